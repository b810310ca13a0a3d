"""Tokenise an image folder into a token file for RAR training.

    python tools/misc/tokenize_images.py CONFIG IMAGE_DIR OUT.npz [--checkpoint CKPT]
        [--size 256] [--no-flip] [--batch-size 32] [--device cpu] [--force]
        [--reconstructions DIR [--recon-size 64]]

CONFIG is a tokenizer config (``model.type='MaskGITVQGAN'``) or a RAR
config (its ``model.tokenizer``); CKPT (an official
``maskgit-vqgan-imagenet-f16-256.bin`` or a tools/train.py checkpoint of the
tokenizer) replaces the weights the config names. IMAGE_DIR holds one folder
per class (ImageNet layout; classes sorted by name). Each image is resized so
its shorter side is ``--size`` and centre-cropped (ADM's centre crop, as the
official pre-tokenisation); its horizontally flipped copy is tokenised too
unless ``--no-flip``. OUT is written atomically and never replaced without
--force.

``--reconstructions DIR`` also writes the tokenizer's reconstruction of each
(unflipped) image to ``DIR/<class>/<name>.png``, resized to ``--recon-size``
(bicubic) if given: to look at, or to train a classifier on the images as
the tokenizer renders them (the RAR demo does).
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch
from PIL import Image

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp', '.JPEG')


def center_crop(img: Image.Image, size: int) -> np.ndarray:
    """ADM's centre crop: halve with a box filter while the short side is >= 2 * size,
    resize (bicubic) so the short side is ``size``, take the central square. ``[size, size, 3]``."""
    while min(img.size) >= 2 * size:
        img = img.resize(tuple(s // 2 for s in img.size), resample=Image.BOX)
    scale = size / min(img.size)
    img = img.resize(tuple(round(s * scale) for s in img.size), resample=Image.BICUBIC)
    arr = np.asarray(img)
    top, left = (arr.shape[0] - size) // 2, (arr.shape[1] - size) // 2
    return arr[top:top + size, left:left + size]


def list_images(root: str):
    """(path, label) of every image under ``root/<class>/`` and the sorted class names."""
    if not osp.isdir(root):
        raise SystemExit(f'image folder not found: {root}')
    classes = sorted(d for d in os.listdir(root) if osp.isdir(osp.join(root, d)))
    if not classes:
        raise SystemExit(f'{root} has no class folders (expected {root}/<class>/<image>)')
    items = []
    for label, name in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(osp.join(root, name))):
            items += [(osp.join(dirpath, f), label) for f in sorted(files) if f.endswith(IMAGE_EXTS)]
    if not items:
        raise SystemExit(f'{root} has class folders but no images ({", ".join(IMAGE_EXTS)})')
    return items, classes


def write_reconstructions(images: torch.Tensor, batch, args, classes) -> None:
    """PNGs of decoded images ``[B, 3, H, W]`` in [0, 1], mirroring the input folder."""
    arrays = (images.clamp(0, 1) * 255).permute(0, 2, 3, 1).to('cpu', torch.uint8).numpy()
    for arr, (path, label) in zip(arrays, batch):
        img = Image.fromarray(arr)
        if args.recon_size:
            img = img.resize((args.recon_size, args.recon_size), resample=Image.BICUBIC)
        out = osp.join(args.reconstructions, classes[label],
                       osp.splitext(osp.basename(path))[0] + '.png')
        os.makedirs(osp.dirname(out), exist_ok=True)
        img.save(out)


def build_tokenizer(config: str, checkpoint=None, device='cpu'):
    """The frozen tokenizer of a tokenizer or RAR config, with ``checkpoint``'s weights if given."""
    from mmengine.config import Config

    import mmmim  # noqa: F401
    from mmmim.models.tokenizers.maskgit_vqgan import frozen_tokenizer
    if not osp.isfile(config):
        raise SystemExit(f'config file not found: {config}')
    model = Config.fromfile(config).model
    cfg = model if model.get('type') in ('MaskGITVQGAN', 'mmmim.MaskGITVQGAN') else model.get(
        'tokenizer')
    if cfg is None:
        raise SystemExit(f'{config}: model is neither a MaskGITVQGAN nor a RAR with a tokenizer')
    cfg = dict(cfg)
    for key in ('discriminator', 'perceptual'):  # training-only parts
        cfg.pop(key, None)
    if checkpoint is not None:
        cfg['init_cfg'] = dict(type='Pretrained', checkpoint=checkpoint)
    if (cfg.get('init_cfg') or {}).get('type') != 'Pretrained':
        raise SystemExit(f'{config}: the tokenizer has no weights; pass --checkpoint')
    return frozen_tokenizer(cfg).to(device)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='tokenizer or RAR config')
    parser.add_argument('image_dir', help='folder of class folders')
    parser.add_argument('out', help='token file to write (.npz)')
    parser.add_argument('--checkpoint', help='tokenizer weights (replaces the config\'s)')
    parser.add_argument('--size', type=int, default=256, help='crop side in pixels')
    parser.add_argument('--no-flip', action='store_true', help='skip the flipped copies')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--force', action='store_true', help='overwrite OUT')
    parser.add_argument('--reconstructions', help='also write the decoded images here')
    parser.add_argument('--recon-size', type=int, help='side of the written reconstructions')
    args = parser.parse_args(argv)
    if not args.out.endswith('.npz'):
        raise SystemExit(f'OUT must end in .npz, got {args.out}')
    if osp.exists(args.out) and not args.force:
        raise SystemExit(f'{args.out} exists; pass --force to overwrite it')
    items, classes = list_images(args.image_dir)
    if args.reconstructions and osp.exists(args.reconstructions) and os.listdir(
            args.reconstructions) and not args.force:
        raise SystemExit(f'{args.reconstructions} exists and is not empty; pass --force')
    tokenizer = build_tokenizer(args.config, args.checkpoint, args.device)
    f = tokenizer.downsample_factor
    if args.size % f:
        raise SystemExit(f'--size {args.size} is not a multiple of the tokenizer\'s factor {f}')

    from mmmim.datasets import write_token_file
    from mmmim.utils import Progress
    tokens, labels = [], []
    with Progress(len(items), f'tokenising {args.image_dir}', 'images') as progress:
        for i in range(0, len(items), args.batch_size):
            batch = items[i:i + args.batch_size]
            arrays = []
            for path, _ in batch:
                try:
                    with Image.open(path) as img:
                        arrays.append(center_crop(img.convert('RGB'), args.size))
                except OSError as e:
                    raise SystemExit(f'cannot read image {path}: {e}') from None
            x = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float().div(255)
            views = [x] if args.no_flip else [x, x.flip(-1)]
            for k, view in enumerate(views):
                ids = tokenizer.encode(view.to(args.device))
                tokens.append(ids.cpu().numpy())
                labels.append(np.array([label for _, label in batch]))
                if args.reconstructions and k == 0:
                    write_reconstructions(tokenizer.decode(ids), batch, args, classes)
            progress.update(len(batch))
    # originals first, then their flips, batch by batch
    tokens, labels = np.concatenate(tokens), np.concatenate(labels)
    meta = dict(config=args.config, checkpoint=args.checkpoint or '', size=str(args.size),
                flip=str(not args.no_flip), image_dir=args.image_dir)
    write_token_file(args.out, tokens, labels, classes, meta, force=args.force)
    print(f'wrote {tokens.shape[0]} token grids of {tokens.shape[1]}x{tokens.shape[2]} '
          f'({len(items)} images{"" if args.no_flip else " and their flips"}, '
          f'{len(classes)} classes) to {args.out}')


if __name__ == '__main__':
    sys.exit(main())
