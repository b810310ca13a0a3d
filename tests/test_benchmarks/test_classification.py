"""ImageNet-style fine-tuning and linear probing through mmpretrain, on the demo data."""
import os.path as osp
import re
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmim.engine import LayerDecayOptimWrapperConstructor

from ..conftest import DEMO_CONFIG, REPO, run_tool

CLS = osp.join(REPO, 'configs', 'benchmarks', 'classification')
FINETUNE = osp.join(CLS, 'vit-demo-p8_mae-pre_1xb32-coslr-10e_demo-ft.py')
LINEAR = osp.join(CLS, 'vit-demo-p8_mae-pre_1xb32-linear-10e_demo.py')


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
    """A tiny MAE pretraining checkpoint in mmmim's layout."""
    from mmmim.apis import init_model
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp('cls') / 'mae_demo.pth')
    torch.save({'state_dict': init_model(DEMO_CONFIG).state_dict(), 'meta': {}}, path)
    return path


def run(config, demo_root, pretrained, work_dir):
    return run_tool([
        sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
        f'train_dataloader.dataset.data_root={demo_root}',
        f'val_dataloader.dataset.data_root={demo_root}',
        f'model.backbone.init_cfg.checkpoint={pretrained}', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1'
    ])


def top1(text):
    found = re.findall(r'accuracy/top1: ([0-9.]+)', text)
    assert found, text[-3000:]
    return float(found[-1])


def test_finetune_trains_and_reports_top1(demo_root, pretrained, tmp_path):
    proc = run(FINETUNE, demo_root, pretrained, str(tmp_path))
    assert 0.0 <= top1(proc.stdout + proc.stderr) <= 100.0
    assert 'layer-wise lr decay 0.65' in proc.stdout + proc.stderr


def test_linear_probe_leaves_the_backbone_unchanged(demo_root, pretrained, tmp_path):
    proc = run(LINEAR, demo_root, pretrained, str(tmp_path))
    assert 0.0 <= top1(proc.stdout + proc.stderr) <= 100.0
    before = torch.load(pretrained)['state_dict']
    after = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['state_dict']
    backbone = [k for k in after if k.startswith('backbone.')]
    assert len(backbone) > 20
    for k in backbone:
        assert torch.equal(after[k], before[k]), k
    head = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['state_dict']['head.fc.weight']
    assert head.abs().sum() > 0


def test_layer_decay_for_classifier_parameter_names():
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(FINETUNE)
    cfg.model.backbone.init_cfg = None
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    ctor = LayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=0.05)),
        dict(layer_decay_rate=0.5))
    lr_of = {}
    for group in ctor.param_groups(model):
        for name in group['param_names']:
            lr_of[name] = (group['lr'], group['weight_decay'])
    depth = 4  # the demo ViT; layers 0..5
    assert lr_of['head.fc.weight'] == (1.0, 0.05)
    assert lr_of['head.fc.bias'] == (1.0, 0.0)
    assert lr_of['backbone.fc_norm.weight'] == (1.0, 0.0)
    assert lr_of['backbone.blocks.3.mlp.fc1.weight'] == (0.5, 0.05)
    assert lr_of['backbone.blocks.0.attn.qkv.weight'] == (0.5**depth, 0.05)
    assert lr_of['backbone.pos_embed'] == (0.5**(depth + 1), 0.0)
    assert lr_of['backbone.patch_embed.proj.weight'] == (0.5**(depth + 1), 0.05)
