"""COCO / Mask R-CNN transfer through mmdet, on the demo data (CPU, tiny models)."""
import glob
import json
import os
import os.path as osp
import re
import socket
import subprocess
import sys

import numpy as np
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


def test_simple_feature_pyramid_norm_option():
    """'LN' (published) puts LayerNorm2d at each of the 9 norm places, 'BN' BatchNorm2d."""
    ln = SimpleFeaturePyramid(32, out_channels=16)
    bn = SimpleFeaturePyramid(32, out_channels=16, norm='BN')
    count = lambda m, t: sum(isinstance(x, t) for x in m.modules())  # noqa: E731
    assert count(ln, LayerNorm2d) == 9 and count(ln, torch.nn.BatchNorm2d) == 0
    assert count(bn, torch.nn.BatchNorm2d) == 9 and count(bn, LayerNorm2d) == 0
    x = torch.randn(4, 32, 8, 8)
    out = bn.train()((x, ))[2]  # the 1x level ends in BatchNorm: batch statistics
    assert out.mean((0, 2, 3)).abs().max() < 1e-5
    with pytest.raises(ValueError, match="norm must be one of"):
        SimpleFeaturePyramid(32, norm='GN')


def test_vitdet_configs_build_with_the_recipe():
    cfg = Config.fromfile(VITDET_B)
    cfg.model.backbone.pop('init_cfg')
    model = build_detector(cfg.model)
    vit = model.backbone
    assert type(vit).__module__.startswith('mmmim') and type(model.neck) is SimpleFeaturePyramid
    assert [i for i, b in enumerate(vit.blocks) if b.window_size == 0] == [2, 5, 8, 11]
    assert {b.window_size for b in vit.blocks} == {0, 14} and vit.cls_token is None
    # detectron2's decomposed relative positions, for the 14x14 window or the 64x64 grid
    assert vit.blocks[0].attn.rel_pos_h.shape == vit.blocks[0].attn.rel_pos_w.shape == (27, 64)
    assert vit.blocks[2].attn.rel_pos_h.shape == vit.blocks[2].attn.rel_pos_w.shape == (127, 64)
    assert all(b.attn.relative_position_bias_table is None for b in vit.blocks)
    # ViT-B/16 counted by hand: patch embedding, 12 blocks, the 64x64 position table,
    # rel_pos_h / rel_pos_w of 8 windowed and 4 global blocks (no class token, no final norm)
    C = 768
    block = 4 * C + (C * 3 * C + 3 * C) + (C * C + C) + (C * 4 * C + 4 * C) + (4 * C * C + C)
    expected = (3 * 16 * 16 * C + C) + 12 * block + 64 * 64 * C + (8 * 2 * 27 + 4 * 2 * 127) * 64
    assert sum(p.numel() for p in vit.parameters()) == expected
    # layer decay 0.7 over 12 blocks: block 11 x0.7, embeddings x0.7^13, neck and heads x1
    ctor = LayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=cfg.optim_wrapper.optimizer),
        cfg.optim_wrapper.paramwise_cfg)
    lrs = {n: g['lr'] for g in ctor(model).optimizer.param_groups
           for n, p in model.named_parameters() if any(p is q for q in g['params'])}
    assert lrs['backbone.blocks.11.attn.qkv.weight'] == pytest.approx(1e-4 * 0.7)
    assert lrs['backbone.blocks.11.attn.rel_pos_h'] == pytest.approx(1e-4 * 0.7)
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
    assert large.model.backbone.use_rel_pos and fpn.model.backbone.use_rel_pos

    # the BEiT family keeps BEiT's tables
    for name in ('beit', 'beitv2', 'cae'):
        cfg = Config.fromfile(
            osp.join(DET, f'mask-rcnn-vitdet_{name}-vit-base-p16_16xb4-amp-lsj-100e_coco-1024.py'))
        cfg.model.backbone.pop('init_cfg')
        vit = build_detector(cfg.model.backbone)
        assert vit.blocks[2].attn.relative_position_bias_table.shape == (127 * 127 + 3, 12)
        assert vit.blocks[0].attn.relative_position_bias_table.shape == (27 * 27 + 3, 12)
        assert all(b.attn.rel_pos_h is None for b in vit.blocks)


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
                ckpt=osp.join(work_dir, 'iter_4.pth'), val=str(root / 'val'),
                metrics=validation_metrics(work_dir))


def validation_metrics(work_dir):
    """The last validation's metrics of a training run, from MMEngine's json scalars."""
    path, = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    rows = [json.loads(line) for line in open(path)]
    return [r for r in rows if 'coco/bbox_mAP' in r][-1]


def pycocotools_ap(ann_file, detections, kind):
    """COCO AP@[.5:.95] of a detections json, computed by pycocotools directly."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(ann_file)
    evaluator = COCOeval(gt, gt.loadRes(detections), kind)
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return evaluator.stats[0]


def test_training_loads_the_mae_encoder_and_validates_with_coco_ap(det_setup):
    log = det_setup['log']
    assert "official layout, prefix 'backbone.'" in log
    assert 'dropped the class-token entry of pos_embed' in log and 'resized pos_embed' in log
    assert re.search(r'Iter\(train\) \[4/4\].*loss: [0-9.]+', log)
    assert osp.isfile(det_setup['ckpt'])
    # the logged AP is COCO's on the written detections (mmdet rounds to 3 digits)
    ann = osp.join(det_setup['data'], 'annotations', 'instances_val2017.json')
    metrics = det_setup['metrics']
    assert metrics['step'] == 4
    for kind in ('bbox', 'segm'):
        ref = pycocotools_ap(ann, f"{det_setup['val']}.{kind}.json", kind)
        assert metrics[f'coco/{kind}_mAP'] == pytest.approx(ref, abs=5e-4)


def test_dist_test_two_processes_gives_the_single_process_results(det_setup, tmp_path):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(ENV, PYTHON=sys.executable, PORT=str(port))
    out = str(tmp_path / 'metrics.json')
    dist = run_tool(['bash', 'tools/dist_test.sh', DEMO, det_setup['ckpt'], '2', '--work-dir',
                     str(tmp_path), '--out', out, '--cfg-options', *TINY,
                     *data_options(det_setup['data']),
                     f'test_evaluator.outfile_prefix={tmp_path}/dist'], env=env)
    log = dist.stdout + dist.stderr
    assert 'Distributed training: True' in log
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all' in log
    metrics = json.load(open(out))
    for kind in ('bbox', 'segm'):
        # the same checkpoint's validation at the end of training, in one process
        assert metrics[f'coco/{kind}_mAP'] == det_setup['metrics'][f'coco/{kind}_mAP']
        assert metrics[f'coco/{kind}_mAP_50'] == det_setup['metrics'][f'coco/{kind}_mAP_50']
        a = json.load(open(f'{tmp_path}/dist.{kind}.json'))
        b = json.load(open(f"{det_setup['val']}.{kind}.json"))
        assert len(a) == len(b) > 0  # the detections of both ranks, gathered
        assert {r['image_id'] for r in a} == {r['image_id'] for r in b} == {1, 2, 3, 4}
    boxes = [sorted((r['image_id'], r['category_id'], *r['bbox']) for r in json.load(open(path)))
             for path in (f'{tmp_path}/dist.bbox.json', f"{det_setup['val']}.bbox.json")]
    assert torch.allclose(torch.tensor(boxes[0]), torch.tensor(boxes[1]), atol=1e-3)


def test_demo_evaluator_scores_the_ground_truth_100_and_wrong_classes_0(tmp_path):
    """The config's CocoMetric and classes on the demo annotations: the objects themselves
    as predictions give AP 1, the same boxes and masks with the next class give AP 0."""
    from mmdet.evaluation import CocoMetric
    from mmmim.datasets import make_demo_coco
    from pycocotools.coco import COCO
    root = str(tmp_path / 'coco')
    make_demo_coco(root, num_train=1, num_val=6)
    ann = osp.join(root, 'annotations', 'instances_val2017.json')
    cfg = Config.fromfile(DEMO)
    classes = cfg.metainfo['classes']
    coco = COCO(ann)

    def evaluate(shift_class):
        options = {k: v for k, v in cfg.val_evaluator.items() if k not in ('type', 'ann_file')}
        metric = CocoMetric(ann_file=ann, **options)
        metric.dataset_meta = dict(classes=classes)
        for img_id in coco.getImgIds():
            info = coco.loadImgs(img_id)[0]
            objects = coco.loadAnns(coco.getAnnIds(imgIds=img_id))
            boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (o['bbox'] for o in objects)])
            labels = [(classes.index(coco.cats[o['category_id']]['name']) + shift_class) % 4
                      for o in objects]
            masks = torch.from_numpy(np.stack([coco.annToMask(o) for o in objects])).bool()
            metric.process({}, [dict(
                img_id=img_id, ori_shape=(info['height'], info['width']),
                pred_instances=dict(bboxes=boxes.float(), scores=torch.ones(len(objects)),
                                    labels=torch.tensor(labels), masks=masks))])
        return metric.evaluate(len(coco.getImgIds()))

    right, wrong = evaluate(0), evaluate(1)
    assert right['coco/bbox_mAP'] == right['coco/segm_mAP'] == 1.0
    assert wrong['coco/bbox_mAP'] == wrong['coco/segm_mAP'] == 0.0


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
