"""Synthetic demo images: a small ImageNet-style folder that needs no download."""
import os.path as osp
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np

CLASSES = ('disc', 'stripes', 'checker', 'ring')


def _render(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``[size, size, 3]`` uint8 BGR image of a shape class on a gradient."""
    c0, c1, fg = rng.integers(0, 256, size=(3, 3))
    t = np.linspace(0.0, 1.0, size)[None, :, None]
    if rng.random() < 0.5:
        t = t.transpose(1, 0, 2)
    img = ((1 - t) * c0 + t * c1).repeat(size, axis=int(t.shape[0] == 1) ^ 1)
    img = np.ascontiguousarray(np.broadcast_to(img, (size, size, 3))).astype(np.uint8)
    fg = tuple(int(v) for v in fg)
    cx, cy = rng.integers(size // 4, 3 * size // 4, size=2)
    r = int(rng.integers(size // 8, size // 3))
    if kind == 'disc':
        cv2.circle(img, (int(cx), int(cy)), r, fg, -1, cv2.LINE_AA)
    elif kind == 'ring':
        cv2.circle(img, (int(cx), int(cy)), r, fg, max(2, r // 4), cv2.LINE_AA)
    elif kind == 'stripes':
        period = int(rng.integers(6, 16))
        ys, xs = np.mgrid[:size, :size]
        angle = rng.uniform(0, np.pi)
        on = ((xs * np.cos(angle) + ys * np.sin(angle)) // (period / 2)) % 2 == 0
        img[on] = fg
    elif kind == 'checker':
        cell = int(rng.integers(6, 16))
        ys, xs = np.mgrid[:size, :size]
        img[((xs // cell) + (ys // cell)) % 2 == 0] = fg
    else:
        raise KeyError(kind)
    noise = rng.normal(0, 4, size=img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make_demo_images(root: str,
                     num_train_per_class: int = 128,
                     num_val_per_class: int = 16,
                     size: int = 64,
                     seed: int = 0) -> Dict[str, int]:
    """Write ``root/{train,val}/<class>/<class>_NNNN.jpg`` and ``root/meta/{train,val}.txt``.

    Classes are shape families (disc, stripes, checker, ring) so that the
    same folder serves pretraining (labels ignored) and classification.
    The output is a pure function of the arguments. Returns images per split.
    """
    rng = np.random.default_rng(seed)
    counts = {}
    Path(root, 'meta').mkdir(parents=True, exist_ok=True)
    for split, n in (('train', num_train_per_class), ('val', num_val_per_class)):
        lines = []
        for label, kind in enumerate(CLASSES):
            folder = Path(root, split, kind)
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                name = f'{kind}_{i:04d}.jpg'
                path = osp.join(str(folder), name)
                if not cv2.imwrite(path, _render(kind, size, rng), [cv2.IMWRITE_JPEG_QUALITY, 95]):
                    raise OSError(f'could not write {path}')
                lines.append(f'{kind}/{name} {label}\n')
        Path(root, 'meta', f'{split}.txt').write_text(''.join(lines))
        counts[split] = len(lines)
    return counts


def make_demo_ade20k(root: str, num_train: int = 32, num_val: int = 8,
                     size: Tuple[int, int] = (64, 96), seed: int = 0) -> Dict[str, int]:
    """Write a tiny segmentation set in ADE20K layout.

    ``images/{training,validation}/*.jpg`` and
    ``annotations/{training,validation}/*.png`` where 0 is "other" (ignored
    with ``reduce_zero_label``), 1 the background and 2..5 the shape classes
    (disc, stripes, checker, ring) drawn at random places. ``size`` is
    (height, width); the default is not square, to exercise sliding inference.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    counts = {}
    for split, n in (('training', num_train), ('validation', num_val)):
        img_dir, ann_dir = Path(root, 'images', split), Path(root, 'annotations', split)
        img_dir.mkdir(parents=True, exist_ok=True)
        ann_dir.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            label = np.ones((h, w), np.uint8)
            img[:] = rng.integers(0, 256, size=3)
            for _ in range(2):
                cls = int(rng.integers(len(CLASSES)))
                tile = _render(CLASSES[cls], min(h, w) // 2, rng)
                y, x = int(rng.integers(0, h - tile.shape[0])), int(rng.integers(0, w - tile.shape[1]))
                img[y:y + tile.shape[0], x:x + tile.shape[1]] = tile
                label[y:y + tile.shape[0], x:x + tile.shape[1]] = 2 + cls
            label[:2] = 0  # a strip of unlabelled pixels
            name = f'ADE_{split[:5]}_{i:08d}'
            if not cv2.imwrite(str(img_dir / f'{name}.jpg'), img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(f'could not write {img_dir / name}.jpg')
            cv2.imwrite(str(ann_dir / f'{name}.png'), label)
        counts[split] = n
    return counts
