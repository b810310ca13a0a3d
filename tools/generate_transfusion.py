"""Text -> image and image -> text with a Transfusion checkpoint, and their scores.

    python tools/generate_transfusion.py CONFIG CKPT --prompts "a red ring in the upper left" ...
        [--out samples.png] [--num-per-prompt N]
    python tools/generate_transfusion.py CONFIG CKPT --images a.png b.jpg       (captions)
    python tools/generate_transfusion.py CONFIG CKPT --eval ANN_JSON --image-root DIR
        [--train-ann ANN_JSON --train-image-root DIR] [--grid grid.png] [--metrics-out m.json]
    common: [--steps S] [--guidance G] [--temperature T] [--max-new-tokens M] [--seed S]
        [--batch-size B] [--no-cache] [--device D] [--force] [--cfg-options KEY=VALUE ...]

``--prompts`` writes a grid of ``--num-per-prompt`` images a prompt (one row
each); ``--images`` prints a caption per image. ``--eval`` takes a
caption annotation file with demo attributes (the captioned demo data):
text -> image from the first caption of every image, judged for shape,
colour and quadrant by :class:`mmmim.evaluation.demo_attributes.DemoJudge`
(fitted on ``--train-ann`` images and measured on the real images of
``--eval`` first); image -> text for every image, scored by the attributes
its caption names and by BLEU-4 / CIDEr against the references. Images are
brought to the model's input side (the config's ``Resize``). Nothing is
replaced without ``--force``.
"""
import argparse
import json
import os.path as osp
import sys

import numpy as np
import torch
from mmengine.config import DictAction

from mmmim.utils import atomic_write  # outputs are checked free (or --force) up front

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Transfusion text -> image and image -> text')
    p.add_argument('config')
    p.add_argument('checkpoint', help='a tools/train.py checkpoint of the config')
    task = p.add_mutually_exclusive_group(required=True)
    task.add_argument('--prompts', nargs='+', help='captions to draw')
    task.add_argument('--images', nargs='+', help='image files to caption')
    task.add_argument('--eval', help='caption annotation JSON with demo attributes to score on')
    p.add_argument('--image-root', help='folder of the --eval images')
    p.add_argument('--num-images', type=int, help='score only the first N images of --eval')
    p.add_argument('--train-ann', help='annotations of the images the shape judge is fitted on')
    p.add_argument('--train-image-root', help='folder of the --train-ann images')
    p.add_argument('--out', default='samples.png', help='grid of the --prompts images')
    p.add_argument('--num-per-prompt', type=int, default=4)
    p.add_argument('--grid', help='with --eval: a grid of prompts, real images and samples')
    p.add_argument('--metrics-out', help='with --eval: write the scores to this .json')
    p.add_argument('--steps', type=int, help='DDIM steps (default: the config)')
    p.add_argument('--guidance', type=float, help='classifier-free guidance scale (1: none)')
    p.add_argument('--temperature', type=float, default=0.0,
                   help='caption sampling temperature (0: greedy)')
    p.add_argument('--max-new-tokens', type=int)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--no-cache', action='store_true', help='rerun the whole sequence every step')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--force', action='store_true', help='overwrite outputs')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE')
    args = p.parse_args(argv)
    if args.eval and not (args.image_root and args.train_ann and args.train_image_root):
        p.error('--eval needs --image-root, --train-ann and --train-image-root')
    if args.num_per_prompt < 1 or args.batch_size < 1:
        p.error('--num-per-prompt and --batch-size must be positive')
    return args


def build_model(args):
    from mmmim.apis import build_model_of
    from mmmim.checkpoint import read_checkpoint, unwrap
    cfg, model = build_model_of(args.config, 'Transfusion', args.cfg_options)
    sd = unwrap(read_checkpoint(args.checkpoint))
    target = model.state_dict()
    missing = sorted(k for k in target if k not in sd and not k.startswith('vae.'))
    unexpected = sorted(k for k in sd if k not in target)
    if missing or unexpected:
        raise SystemExit(f'{args.checkpoint} does not fit {args.config}: missing '
                         f'{missing[:8] or "none"}, unexpected {unexpected[:8] or "none"}')
    model.load_state_dict(sd, strict=model.vae is None)
    print(f'loaded {len(sd)} tensors from {args.checkpoint}')
    return cfg, model.to(args.device).eval()


def input_side(cfg) -> int:
    """The side images are resized to by the config's training pipeline."""
    for t in cfg.train_dataloader.dataset.pipeline:
        if t['type'] in ('Resize', 'CenterCrop'):
            scale = t.get('scale', t.get('crop_size'))
            return int(scale[0] if isinstance(scale, (list, tuple)) else scale)
    raise SystemExit('cannot tell the input size from the config (no Resize / CenterCrop)')


def read_rgb(path, side):
    import cv2
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f'cannot read image {path}')
    return cv2.resize(img, (side, side), interpolation=cv2.INTER_CUBIC)[:, :, ::-1].copy()


def to_inputs(images, device):
    """RGB uint8 ``[B, H, W, 3]`` -> ``[B, 3, H, W]`` in [-1, 1]."""
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().to(device)
    return x / 127.5 - 1


def to_uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1) * 255).round().permute(0, 2, 3, 1).to('cpu', torch.uint8).numpy()


def sampling(args):
    return dict(num_inference_steps=args.steps, guidance_scale=args.guidance,
                temperature=args.temperature, max_new_tokens=args.max_new_tokens)


def draw(model, prompts, side, args, gen):
    n = (side // (model.patch_size * (model.vae.downsample if model.vae else 1)))**2
    opts = sampling(args)
    opts.pop('temperature'), opts.pop('max_new_tokens')
    from mmmim.utils import Progress
    out = []
    with Progress(len(prompts), f'drawing {len(prompts)} images', 'images') as progress:
        for i in range(0, len(prompts), args.batch_size):
            batch = prompts[i:i + args.batch_size]
            out.append(to_uint8(model.text_to_image(batch, n, generator=gen,
                                                    use_cache=not args.no_cache, **opts)))
            progress.update(len(batch))
    return np.concatenate(out)


def describe(model, images, args, gen):
    opts = sampling(args)
    opts.pop('guidance_scale')
    captions = []
    for i in range(0, len(images), args.batch_size):
        x = to_inputs(images[i:i + args.batch_size], args.device)
        captions += model.image_to_text(x, generator=gen, use_cache=not args.no_cache, **opts)
    return captions


def grid(rows, scale=4, pad=2):
    """Rows of equal-sized RGB images -> one image, each cell enlarged ``scale`` times."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h * scale + pad) + pad, cols * (w * scale + pad) + pad, 3), 255,
                  np.uint8)
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            y, x = pad + r * (h * scale + pad), pad + c * (w * scale + pad)
            out[y:y + h * scale, x:x + w * scale] = img.repeat(scale, 0).repeat(scale, 1)
    return out


def save_png(path, image):
    from PIL import Image
    atomic_write(path, lambda tmp: Image.fromarray(image).save(tmp, format='PNG'), force=True)
    print(f'wrote {path}')


def evaluate(args, cfg, model, side, gen):
    from mmmim.datasets.captions import load_caption_annotations
    from mmmim.evaluation import caption_scores
    from mmmim.evaluation.demo_attributes import (DemoJudge, attribute_accuracy,
                                                  caption_attributes, judge_images)
    entries = load_caption_annotations(args.eval)[:args.num_images]
    if any(e['attributes'] is None for e in entries):
        raise SystemExit(f'{args.eval}: --eval needs demo attributes on every image')
    train = load_caption_annotations(args.train_ann)
    judge = DemoJudge().fit([read_rgb(osp.join(args.train_image_root, e['image']), side)
                             for e in train], [e['attributes']['shape'] for e in train])
    real = [read_rgb(osp.join(args.image_root, e['image']), side) for e in entries]
    truth = [e['attributes'] for e in entries]
    scores = {f'judge_on_real/{k}': v for k, v in judge_images(judge, real, truth).items()}

    prompts = [e['captions'][0] for e in entries]
    samples = draw(model, prompts, side, args, gen)
    for k, v in judge_images(judge, samples, truth).items():
        scores[f'text2image/{k}'] = v

    captions = describe(model, real, args, gen)
    for k, v in attribute_accuracy([caption_attributes(c) for c in captions], truth).items():
        scores[f'image2text/{k}'] = v
    refs = {e['image_id']: e['captions'] for e in entries}
    preds = {e['image_id']: c for e, c in zip(entries, captions)}
    for k, v in caption_scores(refs, preds).items():
        if k in ('BLEU-4', 'CIDEr'):
            scores[f'image2text/{k}'] = v
    # reference point: the first caption of another image (same template, wrong attributes)
    other = {e['image_id']: entries[(i + 1) % len(entries)]['captions'][0]
             for i, e in enumerate(entries)}
    for k, v in caption_scores(refs, other).items():
        if k in ('BLEU-4', 'CIDEr'):
            scores[f'other_image_caption/{k}'] = v
    for e, c in list(zip(entries, captions))[:8]:
        print(f'{e["image"]}: "{c}" (refs: "{e["captions"][0]}")')
    if args.grid:
        k = min(8, len(entries))
        save_png(args.grid, grid([real[:k], list(samples[:k])]))
        print('grid columns (prompts): ' + ' | '.join(prompts[:k]))
    return scores


def main(argv=None):
    args = parse_args(argv)
    outputs = [o for o in (args.out if args.prompts else None, args.grid, args.metrics_out) if o]
    for path in outputs:
        if osp.exists(path) and not args.force:
            raise SystemExit(f'{path} exists; pass --force to overwrite it')
    cfg, model = build_model(args)
    side = input_side(cfg)
    gen = torch.Generator(device=args.device).manual_seed(args.seed)
    torch.manual_seed(args.seed)
    if args.prompts:
        prompts = [p for p in args.prompts for _ in range(args.num_per_prompt)]
        images = draw(model, prompts, side, args, gen)
        rows = [list(images[i:i + args.num_per_prompt])
                for i in range(0, len(images), args.num_per_prompt)]
        save_png(args.out, grid(rows))
        return {}
    if args.images:
        for path, caption in zip(args.images, describe(model, [read_rgb(p, side) for p in
                                                              args.images], args, gen)):
            print(f'{path}: {caption}')
        return {}
    scores = evaluate(args, cfg, model, side, gen)
    for k, v in scores.items():
        print(f'{k}: {v:.4f}')
    if args.metrics_out:
        atomic_write(args.metrics_out,
                     lambda tmp: json.dump(scores, open(tmp, 'w'), indent=2),
                     force=True)
        print(f'wrote {args.metrics_out}')
    return scores


if __name__ == '__main__':
    main()
