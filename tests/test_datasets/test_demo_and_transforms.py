import os

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope

from mmmim.datasets import DEMO_CLASSES, LoadImageOrSkip, make_demo_images
from mmmim.registry import DATASETS


def test_demo_images_layout_and_determinism(tmp_path):
    counts = make_demo_images(str(tmp_path / 'a'), 3, 2, size=32, seed=1)
    make_demo_images(str(tmp_path / 'b'), 3, 2, size=32, seed=1)
    assert counts == {'train': 3 * len(DEMO_CLASSES), 'val': 2 * len(DEMO_CLASSES)}
    for cls in DEMO_CLASSES:
        files = sorted(os.listdir(tmp_path / 'a' / 'train' / cls))
        assert len(files) == 3
        a = cv2.imread(str(tmp_path / 'a' / 'train' / cls / files[0]))
        b = cv2.imread(str(tmp_path / 'b' / 'train' / cls / files[0]))
        assert a.shape == (32, 32, 3) and np.array_equal(a, b)
    lines = (tmp_path / 'a' / 'meta' / 'val.txt').read_text().splitlines()
    assert lines[0] == 'disc/disc_0000.jpg 0' and len(lines) == 8


def test_corrupt_image_is_skipped_with_a_warning(tmp_path, capsys):
    root = tmp_path / 'demo'
    make_demo_images(str(root), 2, 1, size=32)
    bad = root / 'train' / 'ring' / 'ring_0001.jpg'
    bad.write_bytes(b'\xff\xd8 this is not a jpeg')
    with DefaultScope.overwrite_default_scope('mmmim'):  # as inside the runner
        dataset = DATASETS.build(dict(
            type='CustomDataset', data_root=str(root), data_prefix='train', with_label=False,
            pipeline=[dict(type='LoadImageOrSkip'), dict(type='PackInputs')]))
    bad_index = [i for i in range(len(dataset))
                 if dataset.get_data_info(i)['img_path'].endswith('ring_0001.jpg')][0]
    before = LoadImageOrSkip.num_skipped
    MMLogger.get_instance('test_skip', log_level='WARNING')
    sample = dataset[bad_index]  # another image comes back instead
    log = capsys.readouterr().out
    assert sample['inputs'].shape == (3, 32, 32)
    # the dataset redraws at random, possibly the bad file again: one warning per skip
    skipped = LoadImageOrSkip.num_skipped - before
    assert skipped >= 1 and log.count('skipped image') == skipped
    assert 'ring_0001.jpg' in log and 'skipped so far' in log


def test_missing_data_root_names_the_path(tmp_path):
    missing = tmp_path / 'no_such_root'
    with pytest.raises(FileNotFoundError, match='no_such_root'):
        DATASETS.build(dict(type='CustomDataset', data_root=str(missing), data_prefix='train',
                            with_label=False, pipeline=[]))
