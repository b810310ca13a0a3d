"""VQA accuracy as the official VQA evaluation scores it (``vqaEval.py``, the LAVIS copy).

The predicted answer has its punctuation handled and numbers / articles /
contractions normalised; the ground-truth answers have their punctuation
handled when the annotators disagree. An answer's accuracy is the mean over
the ten leave-one-out subsets of ``min(1, #matching other answers / 3)``.
"""
import re
from typing import List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from mmmim.registry import METRICS

# The official tables (vqaEval.py): contractions written without apostrophes,
# number words, articles, punctuation.
CONTRACTIONS = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}
NUMBERS = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4',
           'five': '5', 'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
ARTICLES = ('a', 'an', 'the')
PUNCTUATION = (';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<',
               '@', '`', ',', '?', '!')
# As written in vqaEval.py: a full stop not followed by a digit (the "(?!<=\d)" is a
# look-ahead for the text "<=" + digit, not a look-behind), at most re.UNICODE (= 32)
# replacements, since the flag is passed as ``count``.
_PERIOD = re.compile(r'(?!<=\d)(\.)(?!\d)')
_COMMA_NUMBER = re.compile(r'(\d)(,)(\d)')


def process_punctuation(text: str) -> str:
    """Drop punctuation marks next to a space (or all, in a number with a thousands comma),
    turn the others into spaces, and drop full stops not before a digit."""
    out = text
    for p in PUNCTUATION:
        if p + ' ' in text or ' ' + p in text or _COMMA_NUMBER.search(text) is not None:
            out = out.replace(p, '')
        else:
            out = out.replace(p, ' ')
    return _PERIOD.sub('', out, count=int(re.UNICODE))


def process_digit_article(text: str) -> str:
    """Lower case, number words to digits, articles out, contractions restored."""
    words = [NUMBERS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return ' '.join(CONTRACTIONS.get(w, w) for w in words)


def normalize_answer(answer: str) -> str:
    """The official normalisation of a predicted answer."""
    answer = answer.replace('\n', ' ').replace('\t', ' ').strip()
    return process_digit_article(process_punctuation(answer))


def vqa_accuracy(pred: str, gt_answers: Sequence[str]) -> float:
    """Accuracy in [0, 1] of one predicted answer against the annotators' answers (10 in VQAv2)."""
    if not gt_answers:
        raise ValueError('a VQA question needs at least one ground-truth answer')
    pred = normalize_answer(pred)
    gts = list(gt_answers)
    if len(set(gts)) > 1:
        gts = [process_punctuation(a) for a in gts]
    accs = []
    for i in range(len(gts)):
        matching = sum(1 for j, a in enumerate(gts) if j != i and a == pred)
        accs.append(min(1.0, matching / 3))
    return sum(accs) / len(accs)


@METRICS.register_module()
class VQAAccuracy(BaseMetric):
    """Official VQA accuracy (percent) of ``pred_answer`` against every annotator's answer
    (``gt_answers_all`` of :class:`VQADataset`, else ``gt_answer``).

    Data samples without ground truth (test-dev) are skipped and counted.
    """

    default_prefix = 'vqa'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            get = s.get if isinstance(s, dict) else (lambda k, d=None, s=s: getattr(s, k, d))
            pred, gt = get('pred_answer'), get('gt_answers_all', get('gt_answer'))
            if pred is None:
                raise KeyError('a data sample has no pred_answer: run a model that answers')
            gt = [gt] if isinstance(gt, str) else (list(gt) if gt is not None else None)
            self.results.append(None if not gt else vqa_accuracy(pred, gt))

    def compute_metrics(self, results: List) -> dict:
        scored = [r for r in results if r is not None]
        if not scored:
            raise ValueError('no VQA sample with ground-truth answers to score')
        return dict(accuracy=100.0 * sum(scored) / len(scored), unscored=len(results) - len(scored))
