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
    assert cfg.default_scope in ('mmmim', 'mmpretrain', 'mmseg', 'mmdet')
    assert 'optim_wrapper' in cfg and 'param_scheduler' in cfg and 'model' in cfg


@pytest.mark.parametrize('name', [
    'mae/mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py',
    'benchmarks/segmentation/upernet_mae-vit-base-p16_8xb2-amp-160k_ade20k-512x512.py',
    'benchmarks/classification/beit-vit-base-p16_8xb128-amp-coslr-100e_in1k.py',
    'benchmarks/classification/cae-vit-base-p16_32xb128-amp-coslr-100e_in1k.py',
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


@pytest.mark.parametrize('name', [
    'beit/beit_vit-base-p16_8xb256-amp-coslr-800e_in1k.py',
    'beitv2/beitv2_vit-base-p16_8xb256-amp-coslr-1600e_in1k.py',
    'cae/cae_vit-base-p16_8xb256-amp-coslr-300e_in1k.py',
])
def test_pretraining_configs_build_at_full_size(name):
    """The official-size models build (tokenizer weights are not loaded here)."""
    from mmmim.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', name))
    cfg.model.tokenizer.pop('init_cfg', None)
    with DefaultScope.overwrite_default_scope('mmmim'):
        model = MODELS.build(cfg.model)
    assert 85e6 < sum(p.numel() for p in model.backbone.parameters()) < 90e6  # ViT-B/16
    assert model.head.lm_head.out_features == 8192
    pipeline = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    assert pipeline['BlockwiseMaskGenerator']['input_size'] == 14


def test_vqkd_config_builds_the_official_tokenizer_size():
    from mmmim.registry import MODELS
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'beitv2',
                                   'vqkd_vit-base-p16_8xb64-amp-coslr-100e_in1k.py'))
    cfg.model.teacher.pop('init_cfg')
    with DefaultScope.overwrite_default_scope('mmmim'):
        model = MODELS.build(cfg.model)
    assert model.quantize.embedding.weight.shape == (8192, 32)
    assert model.encoder.depth == 12 and model.decoder.depth == 1


def test_mae_pretraining_weight_decay_is_timms_add_weight_decay():
    """main_pretrain.py: timm's ``add_weight_decay`` with no skip list, written out: 1-D
    parameters and biases undecayed, everything else (cls_token, mask_token too) decayed."""
    from mmengine.optim import build_optim_wrapper

    from mmmim.apis import init_model
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'mae', 'mae_vit-base-p16_8xb512-amp-coslr-400e_in1k.py'))
    model = init_model(osp.join(REPO, 'configs', 'mae', 'mae_vit-demo-p8_1xb32-coslr-80e_demo.py'))
    optim = {k: v for k, v in cfg.optim_wrapper.items() if k != 'dtype'}
    wrapper = build_optim_wrapper(model, dict(optim, type='OptimWrapper'))
    wd_of = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        expected = 0.0 if len(p.shape) == 1 or name.endswith('.bias') else 0.05
        assert wd_of[id(p)] == expected, name
    assert wd_of[id(model.backbone.cls_token)] == 0.05 and wd_of[id(model.neck.mask_token)] == 0.05
