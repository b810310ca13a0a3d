import json
import re
import os.path as osp

import cv2
import numpy as np
import pytest

from mmmim.datasets import CaptionDataset, load_caption_annotations
from mmmim.datasets.demo import (BACKGROUNDS, CLASSES, COLORS, PALETTE, POSITIONS, SHAPE_NOUNS,
                                 caption_of)


def test_demo_captions_layout(demo_captions):
    entries = load_caption_annotations(osp.join(demo_captions, 'annotations', 'captions_train.json'))
    assert len(entries) == 512 and all(len(e['captions']) == 2 for e in entries)
    seen = {k: set() for k in ('shape', 'color', 'position')}
    for e in entries:
        a = e['attributes']
        assert a['shape'] in CLASSES and a['color'] in COLORS and a['position'] in POSITIONS
        assert len(set(a['background'])) == 2 and set(a['background']) <= set(BACKGROUNDS)
        for k in seen:
            seen[k].add(a[k])
        text = e['captions'][0]
        assert f'{a["color"]} {SHAPE_NOUNS[a["shape"]]}' in text and text.endswith(a['position'])
    assert all(len(v) == 4 for v in seen.values())  # every value occurs


def test_demo_captions_pixels_show_the_attributes(demo_captions):
    """The shape's colour dominates its quadrant; the other quadrants show none of it."""
    entries = load_caption_annotations(osp.join(demo_captions, 'annotations', 'captions_val.json'))
    for e in entries[:32]:
        img = cv2.imread(osp.join(demo_captions, 'images', 'val', e['image'])).astype(float)
        a = e['attributes']
        near = np.linalg.norm(img - np.array(PALETTE[a['color']]), axis=-1) < 40  # [64, 64]
        row, col = a['position'].startswith('lower'), a['position'].endswith('right')
        quads = near.reshape(2, 32, 2, 32).sum(axis=(1, 3))  # [2, 2] pixel counts
        assert quads[int(row), int(col)] >= 20, (e['image'], a, quads)
        assert quads.sum() - quads[int(row), int(col)] <= 0.1 * quads[int(row), int(col)] + 4


def test_lavis_layout_merges_captions_of_one_image(tmp_path):
    ann = [dict(image='a.jpg', caption='one', image_id=7), dict(image='b.jpg', caption=['two', 'three']),
           dict(image='a.jpg', caption='four', image_id=7)]
    f = tmp_path / 'ann.json'
    f.write_text(json.dumps(ann))
    entries = load_caption_annotations(str(f))
    assert [(e['image'], e['image_id'], e['captions']) for e in entries] == [
        ('a.jpg', 7, ['one', 'four']), ('b.jpg', 'b.jpg', ['two', 'three'])]


@pytest.mark.parametrize('ann, where', [
    ([dict(image='a.jpg', caption='x'), dict(caption='y')], 'entry 1'),
    ([dict(image='a.jpg', caption=3)], 'entry 0'),
    (dict(images=[dict(id=1, file_name='a.jpg')], annotations=[dict(image_id=2, caption='x')]),
     'annotations[0]'),
    (dict(images=[dict(id=1, file_name='a.jpg'), dict(id=1, file_name='b.jpg')], annotations=[]),
     'images[1]'),
    (dict(images=[dict(id=1, file_name='a.jpg')], annotations=[]), 'image 1'),
    (dict(images=[]), 'top level'),
])
def test_malformed_annotations_name_file_and_entry(tmp_path, ann, where):
    f = tmp_path / 'bad.json'
    f.write_text(json.dumps(ann))
    with pytest.raises(ValueError, match=re.escape(f'bad.json: {where}:')):
        load_caption_annotations(str(f))


def test_caption_dataset_modes_and_corrupt_images(demo_captions, tmp_path):
    root = demo_captions
    kw = dict(ann_file='annotations/captions_val.json', data_root=root,
              data_prefix=dict(img_path='images/val'))
    per_caption = CaptionDataset(**kw)
    per_image = CaptionDataset(per_image=True, **kw)
    assert len(per_caption) == 128 and len(per_image) == 64
    s = per_caption[1]
    assert s['text'] == caption_of(s['attributes'])[1] and s['img_path'].endswith('000001.jpg')
    assert per_image[0]['texts'] == list(caption_of(per_image[0]['attributes']))

    # a truncated file is skipped (another sample is drawn) and counted
    from mmmim.datasets import LoadImageOrSkip
    entries = [dict(image='good.jpg', caption='x'), dict(image='bad.jpg', caption='y')]
    (tmp_path / 'ann.json').write_text(json.dumps(entries))
    good = open(osp.join(root, 'images', 'val', '000001.jpg'), 'rb').read()
    (tmp_path / 'good.jpg').write_bytes(good)
    (tmp_path / 'bad.jpg').write_bytes(good[:100])
    before = LoadImageOrSkip.num_skipped()
    ds = CaptionDataset(ann_file='ann.json', data_root=str(tmp_path),
                        pipeline=[dict(type='mmmim.LoadImageOrSkip')])
    assert ds[1]['text'] == 'x'
    assert LoadImageOrSkip.num_skipped() > before  # each draw of the bad file counts
