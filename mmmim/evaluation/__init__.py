from .caption import CaptionMetric, caption_scores, ptb_tokenize
from .classifier import classifier_scores
from .fid import (build_inception, evaluate, extract_features, frechet_distance, inception_score,
                  precision_recall, reference, statistics)

__all__ = [
    'build_inception', 'evaluate', 'extract_features', 'frechet_distance', 'inception_score',
    'precision_recall', 'reference', 'statistics', 'classifier_scores', 'CaptionMetric',
    'caption_scores', 'ptb_tokenize'
]
from .vqa import VQAAccuracy, normalize_answer, vqa_accuracy

__all__ += ['VQAAccuracy', 'normalize_answer', 'vqa_accuracy']
from .retrieval import (RetrievalRecall, RetrievalTestLoop, RetrievalValLoop, evaluate_retrieval,
                        recall_at_k)

__all__ += [
    'RetrievalRecall', 'RetrievalTestLoop', 'RetrievalValLoop', 'evaluate_retrieval', 'recall_at_k'
]
