import os.path as osp
import subprocess
import sys

import pytest

import mmmim
from mmmim.models import ViT
from mmmim.registry import DATASETS, METRICS, MODELS, TRANSFORMS

from .conftest import REPO


def test_mmpretrain_components_resolve_in_mmmim_scope():
    pre = MODELS.build(dict(type='SelfSupDataPreprocessor', mean=[0, 0, 0], std=[1, 1, 1]))
    assert type(pre).__module__.startswith('mmpretrain')
    crop = TRANSFORMS.build(dict(type='RandomResizedCrop', scale=32))
    assert type(crop).__module__.startswith('mmpretrain')
    assert DATASETS.get('ImageNet').__module__.startswith('mmpretrain')
    assert METRICS.get('Accuracy').__module__.startswith('mmpretrain')


@pytest.mark.parametrize('framework', ['mmpretrain', 'mmseg', 'mmdet'])
def test_cross_scope_type_from_downstream_configs(framework):
    registry = pytest.importorskip(
        f'{framework}.registry', reason=f'{framework} needs mmcv with compiled ops')
    model = registry.MODELS.build(
        dict(type='mmmim.ViT', arch=dict(embed_dim=32, depth=1, num_heads=2), img_size=32,
             patch_size=8))
    assert isinstance(model, ViT)


def test_wrong_config_key_is_named():
    with pytest.raises(TypeError, match='archh'):
        MODELS.build(dict(type='ViT', archh='base'))


BLOCKER = '''
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('mmseg', 'mmdet') or name.startswith('mmcv.ops'):
            raise ImportError(f'{name} is blocked for this test')
sys.meta_path.insert(0, Block())
import torch, mmmim
from mmmim.registry import MODELS
m = MODELS.build(dict(type='MAE',
    backbone=dict(type='MAEViT', arch=dict(embed_dim=32, depth=1, num_heads=2), img_size=32, patch_size=8),
    neck=dict(type='MAEDecoder', img_size=32, patch_size=8, embed_dim=32, decoder_embed_dim=16,
              decoder_depth=1, decoder_num_heads=2),
    head=dict(type='PixelReconstructionHead', patch_size=8)))
print('loss', m.loss(torch.randn(2, 3, 32, 32))['loss'].item())
assert not any(k.split('.')[0] in ('mmseg', 'mmdet') for k in sys.modules)
'''


def test_import_without_mmseg_and_mmdet():
    proc = subprocess.run([sys.executable, '-c', BLOCKER], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'loss' in proc.stdout


def test_version():
    assert mmmim.__version__.count('.') == 2
    assert osp.isdir(osp.join(REPO, 'configs', 'mae'))
