import logging
import os

import cv2
import numpy as np
import pytest
from mmengine.dataset import pseudo_collate
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from torch.utils.data import DataLoader

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


def add_bad_jpegs(root, indices=(1, 3)):
    """Make the train images at ``indices`` a corrupt and a truncated JPEG; return their paths."""
    dataset = skipping_dataset(root)
    corrupt, truncated = (dataset.get_data_info(i)['img_path'] for i in indices)
    with open(corrupt, 'wb') as f:
        f.write(b'\xff\xd8 this is not a jpeg')
    with open(truncated, 'rb') as f:
        data = f.read()
    with open(truncated, 'wb') as f:
        f.write(data[:len(data) // 2])  # as an interrupted copy leaves it
    return corrupt, truncated


def skipping_dataset(root):
    with DefaultScope.overwrite_default_scope('mmmim'):  # as inside the runner
        return DATASETS.build(dict(
            type='CustomDataset', data_root=str(root), data_prefix='train', with_label=False,
            pipeline=[dict(type='LoadImageOrSkip'), dict(type='PackInputs')]))


def log_to(path, name):
    """A new current MMLogger that also writes to ``path`` (from forked workers too)."""
    MMLogger.get_instance(name, log_level='WARNING').addHandler(logging.FileHandler(path))


def test_corrupt_image_is_skipped_with_a_warning(tmp_path):
    root = tmp_path / 'demo'
    make_demo_images(str(root), 2, 1, size=32)
    corrupt, truncated = add_bad_jpegs(root)
    dataset = skipping_dataset(root)
    log_to(tmp_path / 'log', 'test_skip')
    before = LoadImageOrSkip.num_skipped()
    for index in (1, 3):  # the bad files
        assert dataset[index]['inputs'].shape == (3, 32, 32)  # another image comes back instead
    log = (tmp_path / 'log').read_text()
    # the dataset redraws at random, possibly a bad file again: one warning per skip
    skipped = LoadImageOrSkip.num_skipped() - before
    assert skipped >= 2 and log.count('skipped image') == skipped
    assert corrupt in log and truncated in log and 'so far on this rank' in log


def test_skips_in_data_loader_workers_are_counted_in_the_main_process(tmp_path):
    root = tmp_path / 'demo'
    make_demo_images(str(root), 2, 1, size=32)
    add_bad_jpegs(root)
    dataset = skipping_dataset(root)
    log_to(tmp_path / 'log', 'test_skip_workers')
    before = LoadImageOrSkip.num_skipped()
    loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=pseudo_collate)
    assert sum(len(batch['inputs']) for batch in loader) == len(dataset)
    skipped = LoadImageOrSkip.num_skipped() - before
    assert skipped >= 2 and (tmp_path / 'log').read_text().count('skipped image') == skipped


def test_missing_data_root_names_the_path(tmp_path):
    missing = tmp_path / 'no_such_root'
    with pytest.raises(FileNotFoundError, match='no_such_root'):
        DATASETS.build(dict(type='CustomDataset', data_root=str(missing), data_prefix='train',
                            with_label=False, pipeline=[]))
