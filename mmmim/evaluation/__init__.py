from .classifier import classifier_scores
from .fid import (build_inception, evaluate, extract_features, frechet_distance, inception_score,
                  precision_recall, reference, statistics)

__all__ = [
    'build_inception', 'evaluate', 'extract_features', 'frechet_distance', 'inception_score',
    'precision_recall', 'reference', 'statistics', 'classifier_scores'
]
