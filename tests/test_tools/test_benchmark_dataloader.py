"""tools/analysis_tools/benchmark_dataloader.py and make_demo_data.py --real-size, on tiny folders."""
import importlib.util
import os.path as osp

import cv2
import numpy as np

from mmmim.datasets import DEMO_CLASSES, make_realsize_images

from ..conftest import REPO

MAE_CONFIG = osp.join(REPO, 'configs', 'mae', 'mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py')


def load_tool(relpath, name):
    spec = importlib.util.spec_from_file_location(name, osp.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_realsize_images_are_photograph_sized_jpegs(tmp_path):
    n = make_realsize_images(str(tmp_path / 'a'), num_per_class=1, size=(75, 100), seed=3)
    make_realsize_images(str(tmp_path / 'b'), num_per_class=1, size=(75, 100), seed=3)
    assert n == len(DEMO_CLASSES)
    lines = (tmp_path / 'a' / 'meta' / 'train.txt').read_text().splitlines()
    assert lines[0] == 'disc/disc_0000.jpg 0' and len(lines) == n
    a = cv2.imread(str(tmp_path / 'a' / 'train' / 'disc' / 'disc_0000.jpg'))
    b = cv2.imread(str(tmp_path / 'b' / 'train' / 'disc' / 'disc_0000.jpg'))
    assert a.shape == (75, 100, 3) and np.array_equal(a, b)


def test_make_demo_data_real_size_option(tmp_path, capsys):
    tool = load_tool('tools/misc/make_demo_data.py', 'mmmim_make_demo_data_tool')
    tool.main([str(tmp_path / 'rs'), '--real-size', '160x120', '--per-class', '1'])
    assert cv2.imread(str(tmp_path / 'rs' / 'train' / 'ring' / 'ring_0000.jpg')).shape == (120, 160, 3)
    assert 'wrote 4 real-size (160x120, quality 90)' in capsys.readouterr().out


def test_benchmark_dataloader_prints_the_table(tmp_path, capsys):
    root = tmp_path / 'rs'
    make_realsize_images(str(root), num_per_class=4, size=(120, 160))
    tool = load_tool('tools/analysis_tools/benchmark_dataloader.py', 'mmmim_benchmark_dataloader_tool')
    tool.main([MAE_CONFIG, '--data-root', str(root), '--pipelines', 'mmpretrain_train_pipeline',
               'mmpretrain_train_pipeline:pillow', 'train', '--num-workers', '0', '1',
               '--images', '16', '--batch-size', '4', '--passes', '1', '--psnr', '4',
               '--candidates', '2'])
    out = capsys.readouterr().out
    rows = [line.split('|')[1:-1] for line in out.splitlines()
            if line.startswith(('| mmpretrain_train_pipeline', '| train'))]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        (name, workers) for workers in ('0', '1')
        for name in ('mmpretrain_train_pipeline', 'mmpretrain_train_pipeline:pillow', 'train')]
    for r in rows:
        assert float(r[2]) > 0 and float(r[4]) > 0  # img/s, img/s per core
    assert rows[0][5].strip() == rows[3][5].strip() == '1.00x'
    assert 'skipped images: 0' in out and 'machine:' in out
    assert 'PSNR of RandomResizedCropFromFile on 4 images' in out
    assert '| resize: torch antialiased bicubic (fast path) |' in out
