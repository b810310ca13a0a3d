"""Visual question answering data in the LAVIS layout, and demo questions on the captioned demo set.

LAVIS VQA annotation files (``vqav2_train.json``, ``vqav2_val_eval.json``,
...) are a list of ``{"question_id", "question", "image", "answer"}`` where
``answer`` is one string or the annotators' list (ten in VQAv2; absent in
test-dev). A sample gets ``gt_answer`` (the distinct answers, most frequent
first) and ``gt_answer_weight`` (their frequencies), as LAVIS's VQA datasets,
plus ``gt_answers_all`` (every annotator's answer, for the official accuracy).
"""
import json
import os.path as osp
from collections import Counter
from pathlib import Path
from typing import Dict, List

from mmengine.dataset import BaseDataset

from mmmim.registry import DATASETS
from mmmim.utils import load_json
from .captions import load_caption_annotations
from .demo import SHAPE_NOUNS

# The demo questions, each with the attribute its answer names.
DEMO_QUESTIONS = (
    ('What shape is in the image?', 'shape'),
    ('What colour is the shape?', 'color'),
    ('Where is the shape?', 'position'),
)


def load_vqa_annotations(ann_file: str) -> List[dict]:
    """Read a LAVIS VQA file: ``[dict(question_id, question, image, answers)]``.

    ``answers`` is the list of annotators' answers (empty without ground
    truth). A malformed entry raises ``ValueError`` naming the file and index.
    """
    ann = load_json(ann_file, 'VQA annotation file')
    if not isinstance(ann, list):
        raise ValueError(f'{ann_file}: expected a list of questions (LAVIS layout)')
    out = []
    for i, a in enumerate(ann):
        if not isinstance(a, dict) or not isinstance(a.get('question'), str) \
                or not isinstance(a.get('image'), str):
            raise ValueError(f'{ann_file}: entry {i}: needs a string "question" and "image"')
        answers = a.get('answer', [])
        answers = [answers] if isinstance(answers, str) else answers
        if not isinstance(answers, list) or not all(isinstance(x, str) for x in answers):
            raise ValueError(f'{ann_file}: entry {i}: "answer" must be a string or a list of strings')
        out.append(dict(question_id=a.get('question_id', i), question=a['question'],
                        image=a['image'], answers=answers))
    return out


@DATASETS.register_module()
class VQADataset(BaseDataset):
    """Questions about images with their answers, from :func:`load_vqa_annotations`.

    A sample has ``img_path``, ``question_id``, ``question`` and, where the
    file has answers, ``gt_answer`` / ``gt_answer_weight`` / ``gt_answers_all``.
    """

    def load_data_list(self) -> List[dict]:
        prefix = self.data_prefix.get('img_path', '')
        data_list = []
        for e in load_vqa_annotations(self.ann_file):
            item = dict(img_path=osp.join(prefix, e['image']), question_id=e['question_id'],
                        question=e['question'])
            if e['answers']:
                counts = Counter(e['answers']).most_common()
                item.update(gt_answer=[a for a, _ in counts],
                            gt_answer_weight=[n / len(e['answers']) for _, n in counts],
                            gt_answers_all=list(e['answers']))
            data_list.append(item)
        return data_list


def demo_answer(attributes: dict, attribute: str) -> str:
    """The answer a demo question about ``attribute`` has, as the normalised form the VQA
    accuracy compares (no article): e.g. ``'ring'``, ``'red'``, ``'upper left'``."""
    if attribute == 'shape':
        return SHAPE_NOUNS[attributes['shape']]
    return attributes[attribute]


def make_demo_vqa(captions_root: str, num_answers: int = 10) -> Dict[str, int]:
    """Write ``annotations/vqa_{train,val}.json`` (LAVIS layout) next to the captioned demo set.

    Every image gets the questions of :data:`DEMO_QUESTIONS`, answered from
    its attributes by ``num_answers`` agreeing annotators (VQAv2 has ten; the
    official accuracy needs at least four to reach 1). Images are named
    ``{split}/{file_name}`` under ``captions_root/images``. Returns the
    question count per split.
    """
    counts = {}
    for split in ('train', 'val'):
        src = osp.join(captions_root, 'annotations', f'captions_{split}.json')
        entries = []
        for e in load_caption_annotations(src):
            if not e['attributes']:
                raise ValueError(f'{src}: image {e["image_id"]!r} has no attributes to ask about')
            for q, attribute in DEMO_QUESTIONS:
                entries.append(dict(question_id=len(entries) + 1, question=q,
                                    image=f'{split}/{e["image"]}',
                                    answer=[demo_answer(e['attributes'], attribute)] * num_answers))
        out = Path(captions_root, 'annotations', f'vqa_{split}.json')
        tmp = out.with_suffix('.json.tmp')
        tmp.write_text(json.dumps(entries))
        tmp.replace(out)
        counts[split] = len(entries)
    return counts
