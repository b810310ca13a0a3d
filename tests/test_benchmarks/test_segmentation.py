"""ADE20K / UperNet transfer through mmseg, on the demo data (CPU, tiny models)."""
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmim.engine import LayerDecayOptimWrapperConstructor
from mmmim.models import FeaturePyramid

from ..conftest import DEMO_CONFIG, REPO, run_tool
from ..test_engine.test_layer_decay import beit_parameter_groups

mmseg = pytest.importorskip('mmseg', reason='mmsegmentation needs mmcv with compiled ops')
SEG_DEMO = osp.join(REPO, 'configs', 'benchmarks', 'segmentation',
                    'upernet_mae-vit-demo-p8_1xb4-400i_demo-ade20k.py')


def build_segmentor(cfg):
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmseg'):
        return MODELS.build(cfg)


def tiny_upernet(depth=12, num_classes=150):
    cfg = Config.fromfile(SEG_DEMO).model
    cfg.backbone.arch = dict(embed_dim=32, depth=depth, num_heads=2, mlp_ratio=2.0)
    cfg.backbone.out_indices = [depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1, depth - 1]
    cfg.backbone.init_cfg = None
    cfg.neck.embed_dim = 32
    cfg.decode_head.update(in_channels=[32] * 4, channels=16, num_classes=num_classes)
    cfg.auxiliary_head.update(in_channels=32, channels=16, num_classes=num_classes)
    return build_segmentor(cfg)


def test_layer_decay_in_encoder_decoder_follows_the_official_beit_rule():
    """mmseg names (``backbone.*``, ``decode_head.*``, ...) give the lr scale and weight decay of
    BEiT's written-out rule on the backbone names; everything else is at the top layer."""
    model = tiny_upernet()
    ctor = LayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05)),
        dict(layer_decay_rate=0.65, custom_keys={'decode_head.conv_seg': dict(lr_mult=10.0)}))
    wrapper = ctor(model)
    found = {}
    for group in wrapper.optimizer.param_groups:
        for p in group['params']:
            found[id(p)] = (group['lr'], group['weight_decay'])
    named = [(n[len('backbone.'):] if n.startswith('backbone.') else 'head.' + n, p)
             for n, p in model.named_parameters()]
    ref = beit_parameter_groups(named, 0.05, {'pos_embed', 'cls_token'}, 0.65)
    for (name, p), (short, _) in zip(model.named_parameters(), named):
        scale, wd = ref[short]
        if name.startswith('decode_head.conv_seg'):
            scale *= 10.0
        assert found[id(p)][0] == pytest.approx(1e-4 * scale, rel=1e-9), name
        assert found[id(p)][1] == wd, name
    assert len(found) == len(ref)
    assert found[id(model.backbone.pos_embed)][1] == 0.0  # prefixed name, still no decay
    # one group per (lr, weight decay) pair
    pairs = [(g['lr'], g['weight_decay']) for g in wrapper.optimizer.param_groups]
    assert len(pairs) == len(set(pairs))


def test_layer_decay_rejects_unknown_options():
    with pytest.raises(KeyError, match='num_layers'):
        LayerDecayOptimWrapperConstructor(
            dict(optimizer=dict(type='AdamW', lr=1e-4)), dict(num_layers=12))


def test_feature_pyramid_strides_and_channels():
    neck = FeaturePyramid(32, rescales=(4, 2, 1, 0.5))
    maps = [torch.randn(2, 32, 8, 12) for _ in range(4)]
    outs = neck(maps)
    assert [o.shape for o in outs] == [(2, 32, 32, 48), (2, 32, 16, 24), (2, 32, 8, 12),
                                      (2, 32, 4, 6)]
    with pytest.raises(ValueError, match='rescale 3'):
        FeaturePyramid(32, rescales=(3, ))


def test_sliding_inference_on_a_non_square_image():
    model = tiny_upernet(depth=4)  # the demo config slides 64x64 windows, stride 42
    model.eval()
    from mmseg.structures import SegDataSample
    img = torch.randint(0, 255, (3, 80, 150), dtype=torch.uint8)
    sample = SegDataSample(metainfo=dict(img_shape=(80, 150), ori_shape=(80, 150)))
    with torch.no_grad():
        out = model.test_step(dict(inputs=[img], data_samples=[sample]))
    assert out[0].pred_sem_seg.data.shape == (1, 80, 150)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def seg_setup(tmp_path_factory):
    """Demo ADE20K data, a tiny MAE pretraining checkpoint, and 4 training iterations."""
    from mmmim.apis import init_model
    from mmmim.datasets import make_demo_ade20k
    root = tmp_path_factory.mktemp('seg')
    data = str(root / 'ade')
    make_demo_ade20k(data, num_train=8, num_val=4)
    torch.manual_seed(0)
    mae = init_model(DEMO_CONFIG)
    pretrain = str(root / 'mae_demo.pth')
    torch.save({'state_dict': mae.state_dict(), 'meta': {}}, pretrain)
    work_dir = str(root / 'work')
    options = ['--cfg-options', f'train_dataloader.dataset.data_root={data}',
               f'val_dataloader.dataset.data_root={data}',
               f'test_dataloader.dataset.data_root={data}',
               f'model.backbone.init_cfg.checkpoint={pretrain}', 'train_cfg.max_iters=4',
               'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4']
    proc = run_tool([sys.executable, 'tools/train.py', SEG_DEMO, '--work-dir', work_dir, *options])
    return dict(data=data, work_dir=work_dir, log=proc.stdout + proc.stderr,
                ckpt=osp.join(work_dir, 'iter_4.pth'))


def miou(text):
    found = re.findall(r'mIoU: ([0-9.]+)', text)
    assert found, text[-3000:]
    return float(found[-1])


def test_pretrained_mae_loads_into_the_segmentor(seg_setup):
    log = seg_setup['log']
    assert 'mmmim layout' in log and 'relative_position_bias_table' in log  # freshly added
    assert osp.isfile(seg_setup['ckpt'])


def test_dist_test_two_processes_prints_miou_like_test_py(seg_setup):
    data = seg_setup['data']
    opts = ['--cfg-options', f'test_dataloader.dataset.data_root={data}']
    env = dict(os.environ, PYTHON=sys.executable, PORT=str(free_port()), OMP_NUM_THREADS='1')
    dist = run_tool(['bash', 'tools/dist_test.sh', SEG_DEMO, seg_setup['ckpt'], '2',
                     '--work-dir', seg_setup['work_dir'] + '_dist', *opts], env=env)
    single = run_tool([sys.executable, 'tools/test.py', SEG_DEMO, seg_setup['ckpt'], '--work-dir',
                       seg_setup['work_dir'] + '_single', *opts])
    assert 'Distributed training: True' in dist.stdout + dist.stderr
    assert miou(dist.stdout + dist.stderr) == miou(single.stdout + single.stderr)
    assert 'aAcc' in single.stdout + single.stderr


def test_bad_segmentation_inputs_are_named(seg_setup, tmp_path):
    data = str(tmp_path / 'ade')
    from mmmim.datasets import make_demo_ade20k
    make_demo_ade20k(data, num_train=2, num_val=2)
    ann = osp.join(data, 'annotations', 'validation', 'ADE_valid_00000000.png')
    cv2.imwrite(ann, np.ones((10, 10), np.uint8))  # wrong size
    opts = ['--cfg-options', f'test_dataloader.dataset.data_root={data}']
    proc = subprocess.run([sys.executable, 'tools/test.py', SEG_DEMO, seg_setup['ckpt'], *opts],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and 'ADE_valid_00000000.png' in proc.stderr and '10x10' in proc.stderr
    os.remove(ann)  # missing annotation file
    proc = subprocess.run([sys.executable, 'tools/test.py', SEG_DEMO, seg_setup['ckpt'], *opts],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and 'ADE_valid_00000000.png' in proc.stderr
    # a checkpoint whose head has another number of classes
    proc = subprocess.run([sys.executable, 'tools/test.py', SEG_DEMO, seg_setup['ckpt'], *opts,
                           'model.decode_head.num_classes=10', 'model.auxiliary_head.num_classes=10'],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0 and 'decode_head.conv_seg.weight' in proc.stderr
