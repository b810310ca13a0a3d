"""The command-line tools end to end on the demo data (CPU, tiny model)."""
import glob
import json
import os
import os.path as osp
import socket
import subprocess
import sys

import cv2
import pytest

from ..conftest import DEMO_CONFIG, REPO, run_tool


def small_run_options(demo_root, epochs):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={demo_root}',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'train_dataloader.batch_size=16', f'train_cfg.max_epochs={epochs}',
            'default_hooks.logger.interval=1', 'default_hooks.checkpoint.interval=1',
            'log_processor.window_size=1']


def losses(work_dir):
    """iteration -> loss from every scalars.json under the work dir."""
    out = {}
    for path in glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')):
        for line in open(path):
            rec = json.loads(line)
            if 'loss' in rec:
                out[rec['iter']] = rec['loss']
    return out


@pytest.fixture(scope='module')
def trained(demo_root, tmp_path_factory):
    """Three epochs uninterrupted (12 iterations)."""
    work_dir = str(tmp_path_factory.mktemp('full'))
    run_tool([sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', work_dir,
              *small_run_options(demo_root, 3)])
    return work_dir


def test_train_writes_checkpoints_and_loss_decreases(trained):
    assert sorted(os.listdir(trained)).count('epoch_3.pth') == 1
    loss = losses(trained)
    assert sorted(loss) == list(range(1, 13))
    assert loss[12] < loss[1]


def test_resume_reproduces_the_uninterrupted_run(trained, demo_root, tmp_path):
    work_dir = str(tmp_path)
    run_tool([sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', work_dir,
              *small_run_options(demo_root, 2)])
    proc = run_tool([sys.executable, 'tools/train.py', DEMO_CONFIG, '--work-dir', work_dir,
                     '--resume', *small_run_options(demo_root, 3)])
    assert 'resumed epoch: 2, iter: 8' in proc.stdout + proc.stderr
    full, resumed = losses(trained), losses(work_dir)
    for it in range(9, 13):
        assert resumed[it] == pytest.approx(full[it], abs=1e-6), it


def test_visualize_reconstruction_writes_png(trained, demo_root, tmp_path):
    out = str(tmp_path / 'recon.png')
    run_tool([sys.executable, 'tools/analysis_tools/visualize_reconstruction.py', DEMO_CONFIG,
              osp.join(trained, 'epoch_3.pth'), str(demo_root / 'val'), '--max-images', '3',
              '--out', out])
    img = cv2.imread(out)
    assert img.shape == (3 * 256, 4 * 256, 3)
    # refuses to overwrite without --force
    proc = subprocess.run([sys.executable, 'tools/analysis_tools/visualize_reconstruction.py',
                           DEMO_CONFIG, osp.join(trained, 'epoch_3.pth'), str(demo_root / 'val'),
                           '--out', out], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and '--force' in proc.stderr


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_dist_train_two_processes_on_cpu(demo_root, tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    proc = run_tool(['bash', 'tools/dist_train.sh', DEMO_CONFIG, '2', '--work-dir', str(tmp_path),
                     *small_run_options(demo_root, 1)], env=env)
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log
    # 64 images / (2 processes x 16) = 2 iterations per epoch
    assert losses(str(tmp_path)).keys() == {1, 2}
    assert osp.isfile(tmp_path / 'epoch_1.pth')


def test_test_tool_explains_pretraining_configs(trained):
    proc = subprocess.run([sys.executable, 'tools/test.py', DEMO_CONFIG,
                           osp.join(trained, 'epoch_3.pth')], cwd=REPO, capture_output=True,
                          text=True)
    assert proc.returncode != 0
    assert 'test_dataloader' in proc.stderr and 'visualize_reconstruction' in proc.stderr


def test_benchmark_prints_images_per_second():
    proc = run_tool([sys.executable, 'tools/analysis_tools/benchmark_train_step.py', DEMO_CONFIG,
                     '--batch-size', '4', '--amp', 'none', '--iters', '2', '--warmup', '1',
                     '--device', 'cpu'])
    assert 'img/s' in proc.stdout and 'MAE' in proc.stdout


def test_make_demo_data_refuses_to_overwrite(tmp_path):
    out = str(tmp_path / 'demo')
    args = [sys.executable, 'tools/misc/make_demo_data.py', out, '--per-class', '2',
            '--val-per-class', '1', '--size', '32']
    run_tool(args)
    proc = subprocess.run(args, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and '--force' in proc.stderr
    run_tool(args + ['--force'])
