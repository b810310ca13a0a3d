import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_CONFIG = osp.join(REPO, 'configs', 'mae', 'mae_vit-demo-p8_1xb32-coslr-80e_demo.py')


def run_tool(args, cwd=REPO, env=None, timeout=600):
    """Run a project command in a fresh interpreter; fail with its output."""
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{" ".join(map(str, args))} exited {proc.returncode}\n'
                             f'--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-6000:]}')
    return proc


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """A small demo image folder shared by the tests (16 train images per class)."""
    from mmmim.datasets import make_demo_images
    root = tmp_path_factory.mktemp('demo')
    make_demo_images(str(root), num_train_per_class=16, num_val_per_class=4, size=64)
    return root


@pytest.fixture
def python():
    return sys.executable
