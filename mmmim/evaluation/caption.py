"""Caption scores: BLEU-1..4 and CIDEr (pycocoevalcap's scorers), with Python tokenisation.

The COCO caption evaluation tokenises with Stanford's PTB tokenizer (Java)
and drops punctuation tokens. :func:`ptb_tokenize` does the same in Python:
lower-case, split off punctuation and the clitics ``'s`` / ``n't`` / ``'re``
..., drop the punctuation. It can differ from the Java tokenizer on rare
inputs (URLs, numbers with separators), not on ordinary captions.
"""
import re
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mmmim.registry import METRICS

# The tokens the COCO evaluation drops after PTB tokenisation.
PUNCTUATIONS = {"''", "'", '``', '`', '-lrb-', '-rrb-', '-lcb-', '-rcb-', '.', '?', '!', ',', ':',
                '-', '--', '...', ';'}
# How the PTB tokenizer writes quotes and brackets.
_PTB_FORMS = {'"': "''", '(': '-lrb-', ')': '-rrb-', '{': '-lcb-', '}': '-rcb-', '[': '-lsb-',
              ']': '-rsb-'}
_CLITIC = re.compile(r"(?i)(n't|'s|'re|'ve|'ll|'d|'m)\b")
_PUNCT = re.compile(r"(\.\.\.|--|[.,!?;:\"()\[\]{}`]|-(?=\s)|(?<=\s)-|'(?=\s)|(?<=\s)')")


def ptb_tokenize(text: str) -> str:
    """Lower-cased, space-separated tokens of ``text`` with punctuation removed."""
    text = ' ' + text.replace('\n', ' ').lower() + ' '
    text = _PUNCT.sub(r' \1 ', text)
    text = _CLITIC.sub(r' \1', text)
    tokens = (_PTB_FORMS.get(t, t) for t in text.split())
    return ' '.join(t for t in tokens if t not in PUNCTUATIONS)


def caption_scores(refs: Dict, preds: Dict) -> Dict[str, float]:
    """BLEU-1..4 and CIDEr of ``preds`` (id -> caption) against ``refs`` (id -> captions).

    Scored as the COCO caption evaluation does (corpus BLEU, CIDEr-D with the
    document frequencies of ``refs``), after :func:`ptb_tokenize`.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    missing = [k for k in preds if k not in refs]
    if missing:
        raise KeyError(f'predicted captions for ids with no reference: {missing[:5]}')
    if not preds:
        raise ValueError('no predicted captions to score')
    gts = {k: [ptb_tokenize(c) for c in refs[k]] for k in preds}
    res = {k: [ptb_tokenize(preds[k])] for k in preds}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    scores = {f'BLEU-{n + 1}': float(b) for n, b in enumerate(bleu)}
    scores['CIDEr'] = float(cider)
    return scores


@METRICS.register_module()
class CaptionMetric(BaseMetric):
    """BLEU-1..4 and CIDEr of generated captions, as :func:`caption_scores`.

    Each data sample carries ``image_id``, its generated ``pred_caption`` and
    its reference captions ``texts`` (``CaptionDataset(per_image=True)``).
    """
    default_prefix = 'caption'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            get = sample.get if isinstance(sample, dict) else lambda k: getattr(sample, k, None)
            if get('pred_caption') is None or get('texts') is None:
                raise KeyError('CaptionMetric needs "pred_caption" and "texts" in each data sample')
            self.results.append((get('image_id'), get('pred_caption'), list(get('texts'))))

    def compute_metrics(self, results: List) -> Dict[str, float]:
        refs, preds = {}, {}
        for image_id, pred, texts in results:
            refs[image_id], preds[image_id] = texts, pred  # a sample seen twice (padding) counts once
        return caption_scores(refs, preds)
