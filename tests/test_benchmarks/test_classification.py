"""ImageNet-style fine-tuning and linear probing through mmpretrain, on the demo data."""
import glob
import os
import os.path as osp
import re
import sys

import cv2
import pytest
import timm
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from ..conftest import DEMO_CONFIG, REPO, run_tool

CLS = osp.join(REPO, 'configs', 'benchmarks', 'classification')
FINETUNE = osp.join(CLS, 'vit-demo-p8_mae-pre_1xb32-coslr-10e_demo-ft.py')
LINEAR = osp.join(CLS, 'vit-demo-p8_mae-pre_1xb32-linear-10e_demo.py')


@pytest.fixture(scope='module')
def pretrained(demo_checkpoint):
    """A tiny MAE pretraining checkpoint in mmmim's layout."""
    return demo_checkpoint(DEMO_CONFIG)


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


@torch.no_grad()
def top1_computed_here(config, checkpoint, demo_root):
    """Top-1 (%) of ``checkpoint`` on the 16 demo val images, without the tools: each image
    read with cv2, normalised with the config's mean / std, labelled by its sorted class
    folder, predicted as the argmax of the classifier's logits."""
    cfg = Config.fromfile(config)
    cfg.model.backbone.init_cfg = None
    model = build_classifier(cfg).eval()
    model.load_state_dict(torch.load(checkpoint, weights_only=True)['state_dict'])
    mean = torch.tensor(cfg.model.data_preprocessor.mean).view(3, 1, 1)
    std = torch.tensor(cfg.model.data_preprocessor.std).view(3, 1, 1)
    correct = []
    for label, name in enumerate(sorted(os.listdir(osp.join(demo_root, 'val')))):
        for path in sorted(glob.glob(osp.join(demo_root, 'val', name, '*.jpg'))):
            rgb = torch.from_numpy(cv2.imread(path)[..., ::-1].copy()).permute(2, 0, 1)
            logits = model((rgb.float() - mean)[None] / std, mode='tensor')
            correct.append(int(logits.argmax()) == label)
    assert len(correct) == 16
    return 100.0 * sum(correct) / len(correct)


def test_finetune_reports_the_top1_of_its_checkpoint(demo_root, pretrained, tmp_path):
    proc = run(FINETUNE, demo_root, pretrained, str(tmp_path))
    log = proc.stdout + proc.stderr
    assert 'layer-wise lr decay 0.65' in log
    ckpt = str(tmp_path / 'epoch_1.pth')
    assert top1(log) == pytest.approx(top1_computed_here(FINETUNE, ckpt, demo_root), abs=1e-3)


def test_linear_probe_leaves_the_backbone_unchanged(demo_root, pretrained, tmp_path):
    run(LINEAR, demo_root, pretrained, str(tmp_path))
    ckpt = str(tmp_path / 'epoch_1.pth')
    tested = run_tool([sys.executable, 'tools/test.py', LINEAR, ckpt, '--work-dir',
                       str(tmp_path / 'test'), '--cfg-options',
                       f'test_dataloader.dataset.data_root={demo_root}'])
    assert top1(tested.stdout + tested.stderr) == pytest.approx(
        top1_computed_here(LINEAR, ckpt, demo_root), abs=1e-3)
    before = torch.load(pretrained)['state_dict']
    after = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['state_dict']
    backbone = [k for k in after if k.startswith('backbone.')]
    assert len(backbone) > 20
    for k in backbone:
        assert torch.equal(after[k], before[k]), k
    head = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)['state_dict']['head.fc.weight']
    assert head.abs().sum() > 0


NEW_RECIPES = {  # config: (algorithm, arch, official pretraining file)
    'beit-vit-base-p16_8xb128-amp-coslr-100e_in1k.py':
        ('beit', 'base', 'beit_base_patch16_224_pt22k.pth'),
    'beit-vit-large-p16_8xb128-amp-coslr-50e_in1k.py':
        ('beit', 'large', 'beit_large_patch16_224_pt22k.pth'),
    'beitv2-vit-base-p16_8xb128-amp-coslr-100e_in1k.py':
        ('beitv2', 'base', 'beitv2_base_patch16_224_pt1k.pth'),
    'beitv2-vit-large-p16_8xb128-amp-coslr-50e_in1k.py':
        ('beitv2', 'large', 'beitv2_large_patch16_224_pt1k.pth'),
    'cae-vit-base-p16_32xb128-amp-coslr-100e_in1k.py':
        ('cae', 'base', 'cae_base_800e_checkpoint-799.pth'),
}
BEIT_DEMO = osp.join(CLS, 'vit-demo-p8_beit-pre_1xb32-coslr-10e_demo-ft.py')


def build_classifier(cfg):
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model)


@pytest.mark.parametrize('name', sorted(NEW_RECIPES))
def test_beit_and_cae_recipes_build_with_their_backbone_options(name):
    from mmmim.models.backbones.vit import ARCHS
    algo, arch, ckpt = NEW_RECIPES[name]
    cfg = Config.fromfile(osp.join(CLS, name))
    assert osp.basename(cfg.model.backbone.init_cfg.checkpoint) == ckpt
    total_batch = int(re.search(r'_(\d+)xb(\d+)', name).group(1)) * cfg.train_dataloader.batch_size
    assert cfg.auto_scale_lr.base_batch_size == total_batch
    cfg.model.backbone.init_cfg = None
    cfg.model.backbone.arch = dict(ARCHS[arch], depth=2)  # the options, not 300M parameters
    bb = build_classifier(cfg).backbone
    assert bb.embed_dim == cfg.model.head.in_channels
    assert bb.rel_pos_bias is None and bb.norm is None and bb.fc_norm is not None
    blk = bb.blocks[1]
    assert blk.attn.relative_position_bias_table.shape == ((2 * 14 - 1)**2 + 3, bb.num_heads)
    assert blk.attn.q_bias is not None and blk.attn.qkv.bias is None
    assert blk.gamma_1 is not None
    assert blk.drop_path.p == pytest.approx(cfg.model.backbone.drop_path_rate)
    if algo == 'cae':
        assert bb.pos_embed_type == 'sincos' and not bb.pos_embed.requires_grad
    else:
        assert bb.pos_embed is None


def official_pretraining_file(algo, path):
    """A tiny pretraining file in the official layout of ``algo`` and the timm model that
    computes the fine-tuning features: mean of the patch tokens through a fresh fc_norm."""
    from ..test_checkpoint.test_convert import cae_sincos, jitter
    torch.manual_seed(0)
    common = dict(img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=0,
                  init_values=0.1, global_pool='avg', use_fc_norm=True)
    if algo == 'cae':
        ref = jitter(timm.models.beit.Beit(use_abs_pos_emb=True, **common))
        with torch.no_grad():
            ref.pos_embed.copy_(cae_sincos(4, 64))
    else:
        ref = jitter(timm.models.beit.Beit(use_abs_pos_emb=False, use_shared_rel_pos_bias=True,
                                           **common))
    ref.fc_norm.reset_parameters()
    sd = {k: v for k, v in ref.state_dict().items() if not k.startswith('fc_norm.')}
    sd.update({'norm.weight': torch.rand(64), 'norm.bias': torch.randn(64)})  # pretraining norm
    if algo == 'cae':
        sd = {'encoder.' + k: v for k, v in sd.items()}
        sd.update({'pretext_neck.decoder_blocks.0.attn.qkv.weight': torch.randn(192, 64),
                   'mask_token': torch.randn(1, 1, 64)})
    else:
        sd.update({'mask_token': torch.randn(1, 1, 64), 'lm_head.weight': torch.randn(8192, 64),
                   'lm_head.bias': torch.zeros(8192)})
    if algo == 'beitv2':
        sd.update({'cls_pt_layers.0.' + k[len('blocks.0.'):]: torch.randn_like(v)
                   for k, v in sd.items() if k.startswith('blocks.0.')})
    torch.save({'model': sd}, path)
    return ref


@pytest.mark.parametrize('name', [n for n in sorted(NEW_RECIPES) if 'base' in n])
def test_official_pretraining_files_load_into_the_recipes(name, tmp_path):
    algo, _, ckpt = NEW_RECIPES[name]
    path = str(tmp_path / ckpt)
    ref = official_pretraining_file(algo, path)
    cfg = Config.fromfile(osp.join(CLS, name))
    cfg.model.backbone.update(arch=dict(embed_dim=64, depth=3, num_heads=4, mlp_ratio=4.0),
                              img_size=32, patch_size=8)
    cfg.model.backbone.init_cfg.checkpoint = path
    cfg.model.head.in_channels = 64
    model = build_classifier(cfg)
    model.init_weights()
    bb = model.backbone.eval()
    if algo == 'cae':  # new per-layer tables; the official fine-tuning starts them at zero
        for blk in bb.blocks:
            torch.nn.init.zeros_(blk.attn.relative_position_bias_table)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = ref.forward_head(ref.forward_features(x), pre_logits=True)
        assert (bb(x)[0] - expected).abs().max() <= 1e-5


def test_beit_demo_finetune_from_an_official_layout_file(demo_root, tmp_path):
    """The demo recipe from a tiny BEiT file with a shared table, as the official repo saves it."""
    from ..test_checkpoint.test_convert import jitter
    torch.manual_seed(0)
    ref = jitter(timm.models.beit.Beit(
        img_size=64, patch_size=8, embed_dim=128, depth=4, num_heads=4, num_classes=0,
        init_values=0.1, use_abs_pos_emb=False, use_shared_rel_pos_bias=True))
    sd = dict(ref.state_dict(), mask_token=torch.randn(1, 1, 128), **{
        'lm_head.weight': torch.randn(64, 128), 'lm_head.bias': torch.zeros(64)})
    path = str(tmp_path / 'beit_demo_pt.pth')
    torch.save({'model': sd}, path)
    proc = run(BEIT_DEMO, demo_root, path, str(tmp_path / 'work'))
    log = proc.stdout + proc.stderr
    ckpt = str(tmp_path / 'work' / 'epoch_1.pth')
    assert top1(log) == pytest.approx(top1_computed_here(BEIT_DEMO, ckpt, demo_root), abs=1e-3)
    assert 'expanded the shared relative position table into 4 layers' in log
    assert 'layer-wise lr decay 0.65' in log
    state = torch.load(tmp_path / 'work' / 'epoch_1.pth', weights_only=True)['state_dict']
    tables = [state[f'backbone.blocks.{i}.attn.relative_position_bias_table'] for i in range(4)]
    start = ref.rel_pos_bias.relative_position_bias_table
    assert all(0 < (t - start).abs().max() < 0.05 for t in tables)  # trained from the shared one
