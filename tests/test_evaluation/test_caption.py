import math
from collections import Counter

import pytest
from mmengine.evaluator import Evaluator

from mmmim.evaluation import caption_scores, ptb_tokenize
from mmmim.registry import METRICS


@pytest.mark.parametrize('text, tokens', [
    ("A man's dog, running -- fast!", "a man 's dog running fast"),
    ('It isn\'t "quoted" (really)...', "it is n't quoted really"),
    ("the 'best' one; dogs' toys", 'the best one dogs toys'),
    ('A red ring on a black to gray gradient, upper left.', 'a red ring on a black to gray gradient upper left'),
])
def test_ptb_tokenize_matches_the_java_tokenizer(text, tokens):
    # expected: Stanford PTBTokenizer -lowerCase output with the COCO punctuation list removed
    assert ptb_tokenize(text) == tokens


def _bleu(refs, preds, n_max):
    """Corpus BLEU written out (Papineni et al.; closest reference length, as coco-caption)."""
    match, total = Counter(), Counter()
    hyp_len = ref_len = 0
    for k, hyp in preds.items():
        h = hyp.split()
        rs = [r.split() for r in refs[k]]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1]
        for n in range(1, n_max + 1):
            grams = Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
            best = Counter()
            for r in rs:
                best |= Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
            match[n] += sum(min(c, best[g]) for g, c in grams.items())
            total[n] += max(len(h) - n + 1, 0)
    bp = min(1.0, math.exp(1 - ref_len / hyp_len))
    return bp * math.exp(sum(math.log(match[n] / total[n]) for n in range(1, n_max + 1)) / n_max)


def test_bleu_against_the_formula_and_cider_order():
    refs = {1: ['a red ring in the upper left', 'a red ring on a black to gray gradient, upper left'],
            2: ['a blue disc in the lower right', 'a blue disc on a white to brown gradient, lower right'],
            3: ['a green striped square in the upper right']}
    preds = {1: 'a red ring in the upper left', 2: 'a blue disc in the upper left',
             3: 'a green square on the right'}
    scores = caption_scores(refs, preds)
    tok_refs = {k: [ptb_tokenize(r) for r in v] for k, v in refs.items()}
    for n in range(1, 5):
        assert scores[f'BLEU-{n}'] == pytest.approx(_bleu(tok_refs, preds, n), rel=1e-6)
    worse = caption_scores(refs, {1: 'a blue disc', 2: 'a red ring', 3: 'a yellow ring'})
    assert worse['CIDEr'] < scores['CIDEr']
    with pytest.raises(KeyError, match='no reference'):
        caption_scores(refs, {9: 'x'})


def test_caption_metric_equals_caption_scores():
    refs = {1: ['a red ring in the upper left'], 2: ['a blue disc in the lower right']}
    preds = {1: 'a red ring in the upper right', 2: 'a blue disc in the lower right'}
    evaluator = Evaluator(METRICS.build(dict(type='CaptionMetric')))
    evaluator.process([dict(image_id=k, pred_caption=preds[k], texts=refs[k]) for k in refs])
    got = evaluator.evaluate(2)
    want = caption_scores(refs, preds)
    assert got == {f'caption/{k}': v for k, v in want.items()}
