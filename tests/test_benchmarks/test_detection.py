"""COCO / Mask R-CNN transfer through mmdet, on the demo data (CPU, tiny models)."""
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmim.engine import LayerDecayOptimWrapperConstructor
from mmmim.models import MAEViT, SimpleFeaturePyramid
from mmmim.models.layers import LayerNorm2d

from ..conftest import REPO, run_tool

mmdet = pytest.importorskip('mmdet', reason='mmdet needs mmcv with compiled ops')
DET = osp.join(REPO, 'configs', 'benchmarks', 'detection')
DEMO = osp.join(DET, 'mask-rcnn-vitdet_mae-vit-demo-p8_1xb4-600i_demo-coco.py')
VITDET_B = osp.join(DET, 'mask-rcnn-vitdet_mae-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py')
# One thread per process: on a small shared CPU, more threads than free cores
# slow these small models down by an order of magnitude.
ENV = dict(os.environ, OMP_NUM_THREADS='1')
# The demo config made tiny: 32-wide ViT, 32-channel pyramid, narrow heads.
TINY = [
    'model.backbone.arch.embed_dim=32', 'model.backbone.arch.num_heads=2',
    'model.backbone.arch.mlp_ratio=2.0', 'model.neck.in_channels=32', 'model.neck.out_channels=32',
    'model.rpn_head.in_channels=32', 'model.rpn_head.feat_channels=32',
    'model.roi_head.bbox_roi_extractor.out_channels=32',
    'model.roi_head.mask_roi_extractor.out_channels=32', 'model.roi_head.bbox_head.in_channels=32',
    'model.roi_head.bbox_head.conv_out_channels=16', 'model.roi_head.bbox_head.fc_out_channels=64',
    'model.roi_head.mask_head.in_channels=32', 'model.roi_head.mask_head.conv_out_channels=16',
    'model.train_cfg.rcnn.sampler.num=32', 'model.train_cfg.rpn_proposal.max_per_img=100',
    'model.test_cfg.rpn.max_per_img=100'
]


def data_options(root):
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    return [f'{split}_dataloader.dataset.data_root={root}/' for split in ('train', 'val', 'test')] + \
        [f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def build_detector(cfg):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def test_layer_norm_2d_normalises_channels_at_each_position():
    torch.manual_seed(0)
    ln = LayerNorm2d(8, eps=1e-6)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = torch.randn(2, 8, 5, 3) * 3 + 1
    mean = x.mean(1, keepdim=True)
    var = x.var(1, unbiased=False, keepdim=True)
    ref = (x - mean) / (var + 1e-6).sqrt() * ln.weight[:, None, None] + ln.bias[:, None, None]
    assert (ln(x) - ref).abs().max() < 1e-5


def test_simple_feature_pyramid_levels_and_channels():
    neck = SimpleFeaturePyramid(32, out_channels=16, scale_factors=(4, 2, 1, 0.5), num_outs=5)
    outs = neck((torch.randn(2, 32, 8, 12), ))
    assert [o.shape for o in outs] == [(2, 16, 32, 48), (2, 16, 16, 24), (2, 16, 8, 12),
                                      (2, 16, 4, 6), (2, 16, 2, 3)]
    # the extra level subsamples the last one; 4x halves the channels twice before its convs
    assert torch.equal(outs[4], F.max_pool2d(outs[3], 1, stride=2))
    assert neck.stages[0][3].out_channels == 8 and neck.stages[1][0].out_channels == 16
    with pytest.raises(ValueError, match='scale factor 3'):
        SimpleFeaturePyramid(32, scale_factors=(3, ))
    with pytest.raises(ValueError, match='num_outs 3'):
        SimpleFeaturePyramid(32, num_outs=3)


def test_vitdet_configs_build_with_the_recipe():
    cfg = Config.fromfile(VITDET_B)
    cfg.model.backbone.pop('init_cfg')
    model = build_detector(cfg.model)
    vit = model.backbone
    assert type(vit).__module__.startswith('mmmim') and type(model.neck) is SimpleFeaturePyramid
    assert [i for i, b in enumerate(vit.blocks) if b.window_size == 0] == [2, 5, 8, 11]
    assert {b.window_size for b in vit.blocks} == {0, 14} and vit.cls_token is None
    assert vit.blocks[0].attn.relative_position_bias_table.shape == (27 * 27 + 3, 12)
    assert vit.blocks[2].attn.relative_position_bias_table.shape == (127 * 127 + 3, 12)
    assert 86e6 < sum(p.numel() for p in vit.parameters()) < 90e6
    # layer decay 0.7 over 12 blocks: block 11 x0.7, embeddings x0.7^13, neck and heads x1
    ctor = LayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=cfg.optim_wrapper.optimizer),
        cfg.optim_wrapper.paramwise_cfg)
    lrs = {n: g['lr'] for g in ctor(model).optimizer.param_groups
           for n, p in model.named_parameters() if any(p is q for q in g['params'])}
    assert lrs['backbone.blocks.11.attn.qkv.weight'] == pytest.approx(1e-4 * 0.7)
    assert lrs['backbone.patch_embed.proj.weight'] == pytest.approx(1e-4 * 0.7**13)
    assert lrs['neck.stages.0.0.weight'] == lrs['roi_head.mask_head.conv_logits.weight'] == 1e-4

    fpn = Config.fromfile(
        osp.join(DET, 'mask-rcnn-fpn_mae-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py'))
    assert fpn.model.backbone.out_indices == [3, 5, 7, 11]
    neck = build_detector(fpn.model.neck)  # a list of necks: applied in turn
    assert [type(m).__name__ for m in neck] == ['FeaturePyramid', 'FPN']
    maps = neck(tuple(torch.randn(1, 768, 4, 4) for _ in range(4)))
    assert [m.shape[-1] for m in maps] == [16, 8, 4, 2, 1] and maps[0].shape[1] == 256
    large = Config.fromfile(
        osp.join(DET, 'mask-rcnn-vitdet_mae-vit-large-p16_16xb4-amp-lsj-100e_coco-1024.py'))
    global_blocks = set(range(24)) - set(large.model.backbone.window_block_indexes)
    assert sorted(global_blocks) == [5, 11, 17, 23]
    assert large.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.8
    assert large.model.backbone.drop_path_rate == 0.4 and large.model.neck.in_channels == 1024


@pytest.fixture(scope='module')
def det_setup(tmp_path_factory):
    """Demo COCO data, a tiny MAE encoder in the official layout, and 4 training iterations
    ending with a validation whose detections are written to ``val.{bbox,segm}.json``."""
    from mmmim.datasets import make_demo_coco
    root = tmp_path_factory.mktemp('det')
    data = str(root / 'coco')
    make_demo_coco(data, num_train=8, num_val=4)
    torch.manual_seed(0)
    mae = MAEViT(arch=dict(embed_dim=32, depth=4, num_heads=2, mlp_ratio=2.0), img_size=64,
                 patch_size=8)
    pretrain = str(root / 'mae_pretrain_tiny.pth')
    torch.save({'model': mae.state_dict()}, pretrain)
    work_dir = str(root / 'work')
    options = ['--cfg-options', *TINY, *data_options(data),
               f'model.backbone.init_cfg.checkpoint={pretrain}', 'train_cfg.max_iters=4',
               'train_cfg.val_interval=4', 'default_hooks.checkpoint.interval=4',
               'default_hooks.logger.interval=1', f'val_evaluator.outfile_prefix={root}/val']
    proc = run_tool([sys.executable, 'tools/train.py', DEMO, '--work-dir', work_dir, *options],
                    env=ENV)
    return dict(data=data, work_dir=work_dir, log=proc.stdout + proc.stderr,
                ckpt=osp.join(work_dir, 'iter_4.pth'), val=str(root / 'val'))


def ap(text, kind):
    found = re.findall(rf'coco/{kind}_mAP: ([0-9.-]+)', text)
    assert found, text[-3000:]
    return float(found[-1])


def test_training_loads_the_mae_encoder_and_validates_with_coco_ap(det_setup):
    log = det_setup['log']
    assert "official layout, prefix 'backbone.'" in log
    assert 'dropped the class-token entry of pos_embed' in log and 'resized pos_embed' in log
    assert re.search(r'Iter\(train\) \[4/4\].*loss: [0-9.]+', log)
    assert 'bbox_mAP_copypaste' in log and 'segm_mAP_copypaste' in log
    assert osp.isfile(det_setup['ckpt'])


def test_dist_test_two_processes_gives_the_single_process_results(det_setup, tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(ENV, PYTHON=sys.executable, PORT=str(port))
    dist = run_tool(['bash', 'tools/dist_test.sh', DEMO, det_setup['ckpt'], '2', '--work-dir',
                     str(tmp_path), '--cfg-options', *TINY, *data_options(det_setup['data']),
                     f'test_evaluator.outfile_prefix={tmp_path}/dist'], env=env)
    log = dist.stdout + dist.stderr
    assert 'Distributed training: True' in log
    for kind in ('bbox', 'segm'):
        assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in log
        # the same checkpoint's validation at the end of training, in one process
        assert ap(log, kind) == ap(det_setup['log'], kind)
        a = json.load(open(f'{tmp_path}/dist.{kind}.json'))
        b = json.load(open(f"{det_setup['val']}.{kind}.json"))
        assert len(a) == len(b) > 0  # the detections of both ranks, gathered
        assert {r['image_id'] for r in a} == {r['image_id'] for r in b} == {1, 2, 3, 4}
    boxes = [sorted((r['image_id'], r['category_id'], *r['bbox']) for r in json.load(open(path)))
             for path in (f'{tmp_path}/dist.bbox.json', f"{det_setup['val']}.bbox.json")]
    assert torch.allclose(torch.tensor(boxes[0]), torch.tensor(boxes[1]), atol=1e-3)


def edit_annotations(root, change):
    path = osp.join(root, 'annotations', 'instances_val2017.json')
    ann = json.load(open(path))
    change(ann)
    json.dump(ann, open(path, 'w'))
    return path


def checked_dataset(root, classes=('disc', 'stripes', 'checker', 'ring'), test_mode=True):
    from mmmim.datasets.coco import CheckedCocoDataset
    return CheckedCocoDataset(data_root=root + '/', ann_file='annotations/instances_val2017.json',
                              data_prefix=dict(img='val2017/'), metainfo=dict(classes=classes),
                              filter_cfg=dict(filter_empty_gt=True), test_mode=test_mode,
                              pipeline=[])


def test_bad_coco_files_are_named(tmp_path):
    from mmmim.datasets import make_demo_coco
    root = str(tmp_path / 'coco')
    make_demo_coco(root, num_train=1, num_val=3)
    assert len(checked_dataset(root)) == 3

    def unknown_category(ann):
        ann['annotations'][1]['category_id'] = 7
    path = edit_annotations(root, unknown_category)
    with pytest.raises(ValueError, match=r'instances_val2017\.json.*category_id 7'):
        checked_dataset(root)

    def fix_and_drop_images(ann):
        ann['annotations'][1]['category_id'] = 1
        ann['annotations'] = []
        ann['images'] = []
    edit_annotations(root, fix_and_drop_images)
    with pytest.raises(ValueError, match=r'instances_val2017\.json: "images" is empty'):
        checked_dataset(root)
    # through the tool: the error, not a traceback deep in mmdet or an empty evaluation
    ckpt = str(tmp_path / 'none.pth')
    torch.save({'state_dict': {}}, ckpt)
    proc = subprocess.run([sys.executable, 'tools/test.py', DEMO, ckpt, '--cfg-options', *TINY,
                           *data_options(root)], cwd=REPO, env=ENV, capture_output=True, text=True)
    assert proc.returncode != 0 and f'{path}: "images" is empty' in proc.stderr

    make_demo_coco(root, num_train=1, num_val=3)
    with pytest.raises(ValueError, match=r"classes \['person'\].*disc"):
        checked_dataset(root, classes=('disc', 'person'))

    def no_annotations(ann):
        ann['annotations'] = []
    edit_annotations(root, no_annotations)
    assert len(checked_dataset(root)) == 3  # testing needs no annotations
    with pytest.raises(ValueError, match='removed all 3 images'):
        checked_dataset(root, test_mode=False)
