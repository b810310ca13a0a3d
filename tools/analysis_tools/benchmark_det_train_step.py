"""Seconds per training iteration and peak memory of an mmdet detector config.

    python tools/analysis_tools/benchmark_det_train_step.py CONFIG [--batch-size 2]
        [--with-cp] [--amp {none,fp16,bf16}] [--iters 10] [--warmup 3] [--device cuda]
        [--cfg-options k=v ...]

A synthetic batch at the backbone's ``img_size`` (three random boxes with box
masks per image) goes through the config's data preprocessor, model and
optimizer (its constructor, layer decay included) with MMEngine's
``train_step``; no checkpoint is loaded. ``--with-cp`` turns on the ViT's
activation checkpointing. Prints one line: s/iter, img/s and peak memory.
"""
import argparse
import os.path as osp

import numpy as np
import torch
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData

from mmmim.utils.timing import time_steps


def synthetic_batch(batch_size: int, size: int, num_classes: int, rng: np.random.Generator) -> dict:
    """Images ``[3, size, size]`` (uint8) with three boxes each, their masks filling the boxes."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    inputs, samples = [], []
    for _ in range(batch_size):
        inputs.append(torch.from_numpy(rng.integers(0, 256, (3, size, size), dtype=np.uint8)))
        xy = rng.uniform(0, size * 0.6, (3, 2))
        wh = rng.uniform(size * 0.05, size * 0.4, (3, 2))
        boxes = np.concatenate([xy, xy + wh], axis=1).astype(np.float32)
        masks = np.zeros((3, size, size), np.uint8)
        for m, (x0, y0, x1, y1) in zip(masks, boxes.astype(int)):
            m[y0:y1, x0:x1] = 1
        gt = InstanceData(bboxes=torch.from_numpy(boxes),
                          labels=torch.from_numpy(rng.integers(0, num_classes, 3)),
                          masks=BitmapMasks(masks, size, size))
        sample = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                             scale_factor=(1.0, 1.0)))
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Detector train-step benchmark')
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=2)
    parser.add_argument('--with-cp', action='store_true', help='activation checkpointing')
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'],
                        help='autocast dtype (default: fp16 on CUDA, none on the CPU)')
    parser.add_argument('--iters', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE')
    args = parser.parse_args(argv)
    cuda = args.device.startswith('cuda')
    args.amp = args.amp or ('fp16' if cuda else 'none')
    if args.amp != 'none' and not cuda:
        parser.error('--amp needs a CUDA device (MMEngine\'s AmpOptimWrapper); use --amp none')

    import mmmim  # noqa: F401  (registers mmmim modules)
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.model.backbone.with_cp = args.with_cp
    wrapper = dict(type='OptimWrapper', optimizer=cfg.optim_wrapper.optimizer)
    for key in ('constructor', 'paramwise_cfg'):
        if key in cfg.optim_wrapper:
            wrapper[key] = cfg.optim_wrapper[key]
    if args.amp != 'none':
        wrapper.update(type='AmpOptimWrapper', loss_scale='dynamic',
                       dtype=dict(bf16='bfloat16', fp16='float16')[args.amp])
    with DefaultScope.overwrite_default_scope('mmdet'):
        model = revert_sync_batchnorm(MODELS.build(cfg.model)).to(args.device).train()
        optim_wrapper = build_optim_wrapper(model, wrapper)
    size = cfg.model.backbone.img_size
    size = size if isinstance(size, int) else size[0]
    rng = np.random.default_rng(0)
    batch = synthetic_batch(args.batch_size, size, cfg.model.roi_head.bbox_head.num_classes, rng)

    dt, mem = time_steps(lambda: model.train_step(batch, optim_wrapper), args.warmup, args.iters,
                         cuda)
    print(f'{osp.basename(args.config)} | {size}px | batch {args.batch_size} | {args.amp} | '
          f'with_cp {args.with_cp} | {args.device} | {dt:.3f} s/iter | '
          f'{args.batch_size / dt:.2f} img/s | {mem}')


if __name__ == '__main__':
    main()
