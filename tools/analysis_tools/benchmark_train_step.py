"""Images/s and peak memory of one training step (forward + backward + optimizer).

    python tools/analysis_tools/benchmark_train_step.py CONFIG [--batch-size 256]
        [--amp {none,bf16,fp16}] [--compile] [--iters 20] [--warmup 5] [--device cuda]
        [--cfg-options KEY=VALUE ...]

Synthetic input at the model's image size (plus, for BEiT / BEiT v2 / CAE,
the tokenizer view and block masks drawn by the config's pipeline; for BLIP,
one caption and image id per image); the
optimizer is AdamW (fused on CUDA). Prints one line: implementation, img/s,
step time, peak memory.
"""
import argparse
from contextlib import nullcontext

import torch
from mmengine.config import Config, DictAction
from mmengine.structures import BaseDataElement

from mmmim.apis import init_model
from mmmim.registry import TRANSFORMS
from mmmim.utils.timing import time_steps


def synthetic_batch(cfg: Config, model: torch.nn.Module, batch_size: int, device: str):
    """Inputs and data samples for ``model.loss``, shaped as the config's pipeline makes them."""
    if hasattr(model, 'visual_encoder'):  # BLIP: images with a caption and an image id each
        from mmpretrain.structures import DataSample
        x = torch.randn(batch_size, 3, *model.visual_encoder.img_size, device=device)
        caption = 'a red disc on a black to gray gradient in the upper left of the picture'
        return x, [DataSample(metainfo=dict(text=caption, image_id=i)) for i in range(batch_size)]
    vit = model.backbone if hasattr(model, 'backbone') else model.encoder
    x = torch.randn(batch_size, 3, *vit.img_size, device=device)
    steps = {t['type']: t for t in cfg.train_dataloader.dataset.pipeline}
    if 'RandomResizedCropTwoViews' not in steps:
        return x, None
    size = steps['RandomResizedCropTwoViews']['second_scale']
    size = (size, size) if isinstance(size, int) else tuple(size)
    view = torch.rand(batch_size, 3, *size, device=device)
    masks = TRANSFORMS.build(steps['BlockwiseMaskGenerator'])
    samples = [BaseDataElement(mask=torch.from_numpy(masks({})['mask'])) for _ in range(batch_size)]
    return [x, view], samples


def main(argv=None):
    parser = argparse.ArgumentParser(description='Train-step benchmark')
    parser.add_argument('config')
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--amp', choices=['none', 'bf16', 'fp16'], default='bf16')
    parser.add_argument('--compile', action='store_true', help='torch.compile the model')
    parser.add_argument('--iters', type=int, default=20)
    parser.add_argument('--warmup', type=int, default=5)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings (e.g. model.tokenizer=PATH)')
    args = parser.parse_args(argv)

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = init_model(cfg, device=args.device).train()
    inputs, samples = synthetic_batch(cfg, model, args.batch_size, args.device)
    cuda = args.device.startswith('cuda')
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4,
                            betas=(0.9, 0.95), weight_decay=0.05, fused=cuda)
    dtype = dict(bf16=torch.bfloat16, fp16=torch.float16).get(args.amp)
    autocast = torch.autocast(args.device.split(':')[0], dtype=dtype) if dtype else nullcontext()
    scaler = torch.amp.GradScaler(enabled=args.amp == 'fp16')
    step_fn = torch.compile(model.loss) if args.compile else model.loss

    def step():
        with autocast:
            losses = step_fn(inputs, samples)
            loss = sum(v for k, v in losses.items() if 'loss' in k)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    dt, mem = time_steps(step, args.warmup, args.iters, cuda)
    name = f'mmmim {type(model).__name__}{" compiled" if args.compile else ""}'
    print(f'{name} | batch {args.batch_size} | {args.amp} | {args.device} | '
          f'{args.batch_size / dt:.1f} img/s | {dt * 1e3:.1f} ms/step | {mem}')


if __name__ == '__main__':
    main()
