"""Sample class-conditional images from a RAR checkpoint.

    python tools/generate.py CONFIG CKPT [--classes 0 7 282 | all] [--num-per-class N]
        [--out grid.png | samples.npz] [--guidance GS] [--guidance-pow P] [--temperature T]
        [--no-cache] [--seed S] [--batch-size B] [--tokenizer TOK_CKPT] [--grid-scale K] [--force]
        [--inception FILE --fid-ref REF.npz|DIR]
        [--classifier CLS_CONFIG CLS_CKPT --real DIR [--classifier-size 64]]
        [--metrics-out metrics.json] [--cfg-options KEY=VALUE ...]

CKPT is a tools/train.py checkpoint of a RAR config or an official
``rar_{b,l,xl,xxl}.bin``. The tokenizer decoding the tokens comes from
--tokenizer, else from CKPT (a tools/train.py checkpoint holds it), else from
the config (``model.tokenizer.init_cfg``). Sampling options default to the
config's ``model.sampling`` (the official README's per-size values).

``--out X.png`` writes a grid per class (``X_<class>.png``, rows of 8) and,
for several classes, ``X.png`` with one row per class; ``--out X.npz`` the
official / ADM sample layout (``arr_0``: uint8 ``[N, H, W, 3]``; ``labels``
beside it). Nothing is replaced without --force.

``--inception`` with ``--fid-ref`` scores the samples (FID, IS, precision /
recall; torch-fidelity's Inception from the named file).
``--classifier`` with ``--real`` reports a classifier's accuracy on the
samples per class, on the real images, and the Frechet distance in its
feature space (the RAR demo's measure); both image sets are brought to the
sample resolution (ADM centre crop) and then to ``--classifier-size``.
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
    p = argparse.ArgumentParser(description='Sample images from a RAR checkpoint')
    p.add_argument('config')
    p.add_argument('checkpoint', help='tools/train.py checkpoint or official rar_*.bin')
    p.add_argument('--classes', nargs='+', help="class indices or names, or 'all' (default: "
                   'all, for at most 16 classes)')
    p.add_argument('--num-per-class', type=int, default=8)
    p.add_argument('--out', default='samples.png', help='.png (grids) or .npz (ADM layout)')
    p.add_argument('--guidance', type=float, help='guidance scale (0: no guidance)')
    p.add_argument('--guidance-pow', type=float, help='power of the cosine guidance schedule')
    p.add_argument('--temperature', type=float)
    p.add_argument('--no-cache', action='store_true', help='recompute the prefix every step')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--tokenizer', help='tokenizer weights (official .bin or tools/train.py ckpt)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--force', action='store_true', help='overwrite outputs')
    p.add_argument('--inception', help='Inception v3 weights (torch-fidelity layout)')
    p.add_argument('--fid-ref', help='reference .npz (ADM: mu / sigma, arr_0) or image folder')
    p.add_argument('--classifier', nargs=2, metavar=('CONFIG', 'CKPT'),
                   help='an mmpretrain classifier to score the samples with')
    p.add_argument('--real', help='folder of class folders of real images (with --classifier)')
    p.add_argument('--classifier-size', type=int, default=None,
                   help='input side of the classifier (default: the sample side)')
    p.add_argument('--metrics-out', help='write the scores to this .json')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, metavar='KEY=VALUE',
                   help='override config entries, e.g. model.tokenizer.init_cfg.checkpoint=...')
    p.add_argument('--grid-scale', type=int, default=1,
                   help='enlarge the PNG grids this many times (nearest neighbour)')
    args = p.parse_args(argv)
    if not args.out.endswith(('.png', '.npz')):
        p.error(f'--out must end in .png or .npz, got {args.out}')
    if bool(args.inception) != bool(args.fid_ref):
        p.error('--inception and --fid-ref go together')
    if bool(args.classifier) != bool(args.real):
        p.error('--classifier and --real go together')
    if args.num_per_class < 1 or args.batch_size < 1:
        p.error('--num-per-class and --batch-size must be positive')
    return args


def _check_free(paths, force):
    for path in paths:
        if osp.exists(path) and not force:
            raise SystemExit(f'{path} exists; pass --force to overwrite it')


def class_names(cfg):
    """Class names from the config's token file, if it is there."""
    try:
        ann = cfg.train_dataloader.dataset.ann_file
        if ann.endswith('.npz') and osp.isfile(ann):
            with np.load(ann, allow_pickle=False) as f:
                return [str(c) for c in f['classes']]
    except (AttributeError, KeyError, OSError, ValueError):
        pass
    return []


def resolve_classes(spec, num_classes, names):
    if not spec or spec == ['all']:
        if num_classes > 16 and not spec:
            raise SystemExit(f'the model has {num_classes} classes: name them with --classes '
                             "(indices, or 'all')")
        return list(range(num_classes))
    out = []
    for s in spec:
        if s.isdigit():
            c = int(s)
        elif s in names:
            c = names.index(s)
        else:
            raise SystemExit(f'--classes: {s!r} is neither an index nor one of '
                             f'{names or "the (unknown) class names"}')
        if not 0 <= c < num_classes:
            raise SystemExit(f'--classes: {c} is outside [0, {num_classes})')
        out.append(c)
    return out


def build_model(args):
    from mmmim.apis import build_model_of
    from mmmim.checkpoint import load_rar_generator, load_tokenizer, read_checkpoint, unwrap
    cfg, model = build_model_of(args.config, 'RAR', args.cfg_options)
    if model.tokenizer is None:
        raise SystemExit(f'{args.config}: model.tokenizer is needed to decode the samples')
    contents = read_checkpoint(args.checkpoint)
    load_rar_generator(model.generator, args.checkpoint, contents=contents)
    if args.tokenizer:
        load_tokenizer(model.tokenizer, args.tokenizer)
    else:
        sd = unwrap(contents)
        tok = {k[len('tokenizer.'):]: v for k, v in sd.items() if k.startswith('tokenizer.')}
        if tok:
            model.tokenizer.load_state_dict(tok, strict=True)
            print(f'tokenizer: the {len(tok)} tensors of {args.checkpoint}')
        else:
            model.tokenizer.init_weights()
    return cfg, model.to(args.device).eval()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """``[B, 3, H, W]`` in [0, 1] to uint8 ``[B, H, W, 3]`` (x 255, truncated, as the official
    sampling script)."""
    return (images.clamp(0, 1) * 255).permute(0, 2, 3, 1).to('cpu', torch.uint8).numpy()


def grid(images: np.ndarray, cols: int = 8, pad: int = 2) -> np.ndarray:
    n, h, w, _ = images.shape
    rows = -(-n // cols)
    cols = min(cols, n)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    return out


def output_paths(out, classes, names):
    if out.endswith('.npz'):
        return [out]
    stem = out[:-len('.png')]
    paths = [f'{stem}_{names[c] if c < len(names) else c}.png' for c in classes]
    return paths + ([out] if len(classes) > 1 else [])


def write_outputs(args, images, labels, classes, names):
    from PIL import Image
    if args.out.endswith('.npz'):
        atomic_write(args.out, lambda tmp: np.savez(tmp, arr_0=images, labels=labels), force=True)
        print(f'wrote {images.shape[0]} samples {tuple(images.shape[1:])} to {args.out}')
        return
    paths = output_paths(args.out, classes, names)
    if args.grid_scale > 1:  # for viewing only; the npz keeps the samples as they are
        images = images.repeat(args.grid_scale, axis=1).repeat(args.grid_scale, axis=2)
    rows = []
    for c, path in zip(classes, paths):
        imgs = images[labels == c]
        atomic_write(path,
                     lambda tmp: Image.fromarray(grid(imgs)).save(tmp, format='PNG'),
                     force=True)
        rows.append(grid(imgs[:8]))
    if len(classes) > 1:
        width = max(r.shape[1] for r in rows)
        rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255)
                for r in rows]
        atomic_write(args.out,
                     lambda tmp: Image.fromarray(np.concatenate(rows)).save(tmp, format='PNG'),
                     force=True)
    print(f'wrote {", ".join(paths)}')


def real_images(root, side, out_side):
    """Real images of ``root/<class>/`` at ``side`` (ADM centre crop), resized to ``out_side``."""
    from misc.tokenize_images import center_crop, list_images
    from PIL import Image
    items, classes = list_images(root)
    imgs = []
    for path, _ in items:
        with Image.open(path) as img:
            imgs.append(resize(center_crop(img.convert('RGB'), side), out_side))
    return np.stack(imgs), np.array([label for _, label in items]), classes


def resize(img: np.ndarray, side: int) -> np.ndarray:
    from PIL import Image
    if img.shape[0] == side and img.shape[1] == side:
        return img
    return np.asarray(Image.fromarray(img).resize((side, side), resample=Image.BICUBIC))


def classifier_metrics(args, images, labels, names):
    from mmmim.apis import init_model
    from mmmim.evaluation import classifier_scores
    cls_cfg, cls_ckpt = args.classifier
    side = images.shape[1]
    out_side = args.classifier_size or side
    real, real_labels, real_classes = real_images(args.real, side, out_side)
    if names and list(real_classes) != list(names):
        raise SystemExit(f'--real {args.real} has classes {real_classes}, the model {names}')
    model = init_model(cls_cfg, cls_ckpt, device=args.device)
    gen = np.stack([resize(img, out_side) for img in images])
    return classifier_scores(model, gen, labels, real, real_labels, names or real_classes)


def main(argv=None):
    args = parse_args(argv)
    cfg, model = build_model(args)
    names = class_names(cfg)
    classes = resolve_classes(args.classes, model.generator.num_classes, names)
    outputs = output_paths(args.out, classes, names) + ([args.metrics_out] if args.metrics_out else [])
    _check_free(outputs, args.force)
    sampling = dict(guidance_scale=args.guidance, guidance_scale_pow=args.guidance_pow,
                    temperature=args.temperature)
    shown = dict(model.sampling, **{k: v for k, v in sampling.items() if v is not None})
    print('sampling: ' + ', '.join(f'{k} {v}' for k, v in shown.items()) +
          f', KV cache {"off" if args.no_cache else "on"}')

    from mmmim.utils import Progress
    labels = np.repeat(np.array(classes, np.int64), args.num_per_class)
    gen = torch.Generator(device=args.device).manual_seed(args.seed)
    torch.manual_seed(args.seed)
    images = []
    with Progress(len(labels), f'sampling {len(labels)} images', 'images') as progress:
        for i in range(0, len(labels), args.batch_size):
            y = torch.from_numpy(labels[i:i + args.batch_size]).to(args.device)
            ids = model.generate(y, use_cache=not args.no_cache, generator=gen, **sampling)
            images.append(to_uint8(model.decode(ids)))
            progress.update(len(y))
    images = np.concatenate(images)
    write_outputs(args, images, labels, classes, names)

    scores = {}
    if args.inception:
        from mmmim.evaluation import build_inception, evaluate, reference
        extractor = build_inception(args.inception, args.device)
        ref = reference(args.fid_ref, extractor, device=args.device)
        scores.update(evaluate(images, ref, extractor, device=args.device))
    if args.classifier:
        scores.update(classifier_metrics(args, images, labels, names))
    if scores:
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
