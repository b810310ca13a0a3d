"""The VQA accuracy against the official evaluation's behaviour, written out example by example,
and the LAVIS-layout VQA dataset / demo questions."""
import json

import pytest

from mmmim.datasets import VQADataset, load_vqa_annotations, make_demo_vqa
from mmmim.evaluation import VQAAccuracy, normalize_answer, vqa_accuracy
from mmmim.evaluation.vqa import process_digit_article, process_punctuation


@pytest.mark.parametrize('text, expected', [
    ('yes.', 'yes'),                 # full stop not before a digit: dropped
    ('3.5', '3.5'),                  # decimal point kept
    ('hello, world', 'hello world'),  # next to a space: removed
    ('a/b', 'a b'),                  # not next to a space: becomes a space
    ('1,000 (approx)', '1000 approx'),  # a thousands comma: every mark removed
    ("what's?", "what's "),          # '?' touches no space: a space; apostrophe kept
])
def test_punctuation_as_official(text, expected):
    assert process_punctuation(text) == expected


@pytest.mark.parametrize('text, expected', [
    ('Two dogs', '2 dogs'), ('the cat', 'cat'), ('an apple a day', 'apple day'),
    ('isnt', "isn't"), ('None', '0'), ('ten  Ten', '10 10'), ('dont know', "don't know"),
])
def test_digits_articles_contractions_as_official(text, expected):
    assert process_digit_article(text) == expected


def test_normalize_answer():
    assert normalize_answer(' The Two\tdogs.\n') == '2 dogs'


@pytest.mark.parametrize('gts, pred, acc', [
    (['red'] * 10, 'Red.', 1.0),
    (['red'] * 4 + ['blue'] * 6, 'red', 1.0),         # 4 agree: every leave-one-out has 3
    (['red'] * 3 + ['blue'] * 7, 'red', 0.9),         # (3 x 2/3 + 7 x 1) / 10
    (['red'] * 2 + ['blue'] * 8, 'red', 0.6),         # (2 x 1/3 + 8 x 2/3) / 10
    (['red'] + ['blue'] * 9, 'red', 0.3),             # (0 + 9 x 1/3) / 10
    (['2'] * 10, 'two', 1.0),                         # the prediction is normalised
    (['two'] * 10, 'two', 0.0),                       # unanimous answers are not (as official)
    (['yes.'] * 5 + ['no'] * 5, 'yes', 1.0),          # disagreeing answers lose punctuation
    (['yes!'] * 5 + ['no'] * 5, 'yes', 0.0),          # ... '!' becomes a space: 'yes ' (official)
])
def test_vqa_accuracy_leave_one_out(gts, pred, acc):
    assert vqa_accuracy(pred, gts) == pytest.approx(acc)


def test_metric_and_dataset(tmp_path):
    ann = [dict(question_id=1, question='What colour?', image='a.jpg',
                answer=['red'] * 7 + ['blue'] * 3),
           dict(question_id=2, question='Shape?', image='b.jpg', answer='ring'),
           dict(question_id=3, question='Test-dev?', image='c.jpg')]
    (tmp_path / 'vqa.json').write_text(json.dumps(ann))
    ds = VQADataset(ann_file=str(tmp_path / 'vqa.json'), data_prefix=dict(img_path='imgs'),
                    pipeline=[], lazy_init=False)
    assert ds[0]['gt_answer'] == ['red', 'blue'] and ds[0]['gt_answer_weight'] == [0.7, 0.3]
    assert ds[0]['img_path'].endswith('imgs/a.jpg') and 'gt_answer' not in ds[2]
    metric = VQAAccuracy()
    metric.process(None, [dict(pred_answer='red', gt_answers_all=ds[0]['gt_answers_all']),
                          dict(pred_answer='a blue', gt_answers_all=ds[0]['gt_answers_all']),
                          dict(pred_answer='x')])
    out = metric.compute_metrics(metric.results)
    assert out['accuracy'] == pytest.approx(100 * (1.0 + 0.9) / 2) and out['unscored'] == 1
    (tmp_path / 'bad.json').write_text(json.dumps([dict(question='q', image='a', answer=3)]))
    with pytest.raises(ValueError, match=r'bad\.json: entry 0'):
        load_vqa_annotations(str(tmp_path / 'bad.json'))


def test_demo_questions(tmp_path):
    (tmp_path / 'annotations').mkdir()
    for split in ('train', 'val'):
        img = dict(id=1, file_name='000001.jpg', height=64, width=64,
                   attributes=dict(shape='stripes', color='red', background=['black', 'gray'],
                                   position='lower left'))
        caps = dict(images=[img], annotations=[dict(id=1, image_id=1, caption='a red ring')],
                    categories=[])
        (tmp_path / 'annotations' / f'captions_{split}.json').write_text(json.dumps(caps))
    assert make_demo_vqa(str(tmp_path)) == dict(train=3, val=3)
    qa = load_vqa_annotations(str(tmp_path / 'annotations' / 'vqa_val.json'))
    assert [(q['question'], q['answers'][0], q['image']) for q in qa] == [
        ('What shape is in the image?', 'striped square', 'val/000001.jpg'),
        ('What colour is the shape?', 'red', 'val/000001.jpg'),
        ('Where is the shape?', 'lower left', 'val/000001.jpg')]
    assert all(len(q['answers']) == 10 for q in qa)
    assert vqa_accuracy('a striped square', qa[0]['answers']) == 1.0
