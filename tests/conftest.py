import os
import os.path as osp
import re
import socket
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


def free_port():
    """A TCP port that nothing listens on now (one per torchrun call)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def dist_env(**extra):
    """Environment for tools/dist_*.sh: this interpreter, a fresh port, one thread per process."""
    return dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1',
                **extra)


@pytest.fixture(scope='session')
def demo_root(tmp_path_factory):
    """A small demo image folder shared by the tests (16 train images per class)."""
    from mmmim.datasets import make_demo_images
    root = tmp_path_factory.mktemp('demo')
    make_demo_images(str(root), num_train_per_class=16, num_val_per_class=4, size=64)
    return root


@pytest.fixture(scope='session')
def demo_ade20k(tmp_path_factory):
    """Demo data in ADE20K layout: 8 training and 4 validation images."""
    from mmmim.datasets import make_demo_ade20k
    root = str(tmp_path_factory.mktemp('ade20k'))
    make_demo_ade20k(root, num_train=8, num_val=4)
    return root


@pytest.fixture(scope='session')
def demo_coco(tmp_path_factory):
    """Demo data in COCO layout: 8 train2017 and 4 val2017 images."""
    from mmmim.datasets import make_demo_coco
    root = str(tmp_path_factory.mktemp('coco'))
    make_demo_coco(root, num_train=8, num_val=4)
    return root


@pytest.fixture(scope='session')
def demo_captions(tmp_path_factory):
    """Captioned demo data (COCO-captions layout): 512 train and 64 val images."""
    from mmmim.datasets import make_demo_captions
    root = str(tmp_path_factory.mktemp('captions'))
    make_demo_captions(root)
    return root


def _demo_tokenizer(tmp_path_factory, demo_captions, kind):
    out = str(tmp_path_factory.mktemp(kind))
    run_tool([sys.executable, 'tools/misc/train_text_tokenizer.py',
              osp.join(demo_captions, 'annotations', 'captions_train.json'), '--out', out,
              '--kind', kind])
    return out


@pytest.fixture(scope='session')
def demo_wordpiece_vocab(tmp_path_factory, demo_captions):
    """A folder with a WordPiece ``vocab.txt`` trained on the demo captions."""
    return _demo_tokenizer(tmp_path_factory, demo_captions, 'wordpiece')


@pytest.fixture(scope='session')
def demo_bpe_tokenizer(tmp_path_factory, demo_captions):
    """A folder with a byte-level BPE ``tokenizer.json`` trained on the demo captions."""
    return _demo_tokenizer(tmp_path_factory, demo_captions, 'bpe')


@pytest.fixture(scope='session')
def demo_checkpoint(tmp_path_factory):
    """``demo_checkpoint(config)``: the seeded initial weights of a pretraining demo
    config in mmmim's layout, written once per session."""
    import torch
    from mmmim.apis import init_model
    made = {}

    def make(config):
        if config not in made:
            torch.manual_seed(0)
            name = re.sub(r'\W', '_', osp.splitext(osp.basename(config))[0])
            path = str(tmp_path_factory.mktemp('ckpt') / f'{name}.pth')
            torch.save({'state_dict': init_model(config).state_dict(), 'meta': {}}, path)
            made[config] = path
        return made[config]
    return make


@pytest.fixture
def python():
    return sys.executable
