"""Every shipped config parses; the base-size ones build."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from .conftest import REPO

CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


@pytest.mark.parametrize('path', CONFIGS, ids=[osp.basename(p) for p in CONFIGS])
def test_config_parses_with_1x_keys_only(path):
    cfg = Config.fromfile(path)
    assert 'fp16' not in cfg and 'optimizer' not in cfg and 'lr_config' not in cfg
    assert cfg.default_scope in ('mmmim', 'mmpretrain', 'mmseg')
    assert 'optim_wrapper' in cfg and 'param_scheduler' in cfg and 'model' in cfg


@pytest.mark.parametrize('name', [
    'mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
    'benchmarks/segmentation/upernet_mae-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py',
])
def test_base_configs_build(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    cfg.model.backbone.pop('init_cfg', None)
    if cfg.default_scope == 'mmseg':
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
        register_all_modules(init_default_scope=False)
    else:
        from mmmim.registry import MODELS
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    assert type(model.backbone).__module__.startswith('mmmim')
    assert sum(p.numel() for p in model.backbone.parameters()) > 80e6  # ViT-B
