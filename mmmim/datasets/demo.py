"""Synthetic demo images: a small ImageNet-style folder that needs no download."""
import json
import os.path as osp
from pathlib import Path
from typing import Dict, Tuple

import cv2
import numpy as np

CLASSES = ('disc', 'stripes', 'checker', 'ring')

# The captioned layout (make_demo_captions): named colours, in BGR.
PALETTE = {'red': (40, 40, 220), 'green': (60, 190, 40), 'blue': (220, 90, 30),
           'yellow': (30, 220, 235), 'black': (20, 20, 20), 'gray': (128, 128, 128),
           'white': (235, 235, 235), 'brown': (30, 70, 120)}
COLORS = ('red', 'green', 'blue', 'yellow')  # of the shape
BACKGROUNDS = ('black', 'gray', 'white', 'brown')  # the two ends of the gradient
POSITIONS = ('upper left', 'upper right', 'lower left', 'lower right')  # quadrant of the shape
SHAPE_NOUNS = {'disc': 'disc', 'ring': 'ring', 'stripes': 'striped square',
               'checker': 'checkered square'}


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


def _shape_polygon(kind: str, cx: float, cy: float, r: float, angle: float) -> np.ndarray:
    """Outline of one demo object as a closed polygon ``[K, 2]`` (x, y).

    Discs are 24-gons, stripes / checker squares of half-diagonal ``r``, and
    rings one "keyhole" polygon (outer circle, a cut, the inner circle the
    other way round), so that a single COCO polygon describes the hole.
    """
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False) + angle
    circle = np.stack([np.cos(t), np.sin(t)], axis=1)  # [24, 2]
    if kind == 'disc':
        pts = r * circle
    elif kind == 'ring':
        pts = np.concatenate([r * circle, r * circle[:1], 0.55 * r * circle[:1],
                              0.55 * r * circle[::-1]])
    else:
        pts = r * circle[::6]  # 4 corners
    return pts + np.array([cx, cy])


def make_demo_coco(root: str, num_train: int = 128, num_val: int = 32,
                   size: Tuple[int, int] = (96, 128), seed: int = 0) -> Dict[str, int]:
    """Write a tiny instance-segmentation set in COCO layout.

    ``{train,val}2017/*.jpg`` and ``annotations/instances_{train,val}2017.json``
    with polygon masks: one to three non-overlapping objects per image of the
    shape classes (disc, stripes, checker, ring; category ids 1 to 4) on a
    gradient. ``size`` is (height, width); the default is not square.
    Returns the number of images per split.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    ys, xs = np.mgrid[:h, :w]
    categories = [dict(id=i + 1, name=name, supercategory='shape') for i, name in enumerate(CLASSES)]
    counts = {}
    Path(root, 'annotations').mkdir(parents=True, exist_ok=True)
    for split, n in (('train', num_train), ('val', num_val)):
        folder = Path(root, f'{split}2017')
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for img_id in range(1, n + 1):
            c0, c1 = rng.integers(0, 256, size=(2, 3))
            t = np.linspace(0.0, 1.0, w)[None, :, None]
            img = ((1 - t) * c0 + t * c1).repeat(h, axis=0)  # [h, w, 3] float
            placed = []
            for _ in range(int(rng.integers(1, 4))):
                kind = CLASSES[int(rng.integers(len(CLASSES)))]
                for _try in range(50):
                    r = float(rng.uniform(10, 24))
                    cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
                    if all(np.hypot(cx - x, cy - y) > r + q + 2 for x, y, q in placed):
                        break
                else:
                    continue
                placed.append((cx, cy, r))
                poly = _shape_polygon(kind, cx, cy, r, float(rng.uniform(0, np.pi)))
                mask = np.zeros((h, w), np.uint8)
                if kind == 'ring':
                    cv2.fillPoly(mask, [np.round(poly[:24]).astype(np.int32)], 1)
                    cv2.fillPoly(mask, [np.round(poly[-24:]).astype(np.int32)], 0)
                else:
                    cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 1)
                fg, fg2 = rng.integers(0, 256, size=(2, 3))
                period = int(rng.integers(4, 8))
                if kind == 'stripes':
                    on = ((xs + ys) // period) % 2 == 0
                elif kind == 'checker':
                    on = ((xs // period) + (ys // period)) % 2 == 0
                else:
                    on = np.ones((h, w), bool)
                inside = mask.astype(bool)
                img[inside & on] = fg
                img[inside & ~on] = fg2
                x0, y0 = poly.min(axis=0)
                x1, y1 = poly.max(axis=0)
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=img_id, category_id=CLASSES.index(kind) + 1,
                    segmentation=[np.round(poly, 1).flatten().tolist()], area=float(inside.sum()),
                    bbox=[round(float(x0), 1), round(float(y0), 1), round(float(x1 - x0), 1),
                          round(float(y1 - y0), 1)], iscrowd=0))
            img = np.clip(img + rng.normal(0, 4, size=img.shape), 0, 255).astype(np.uint8)
            name = f'{img_id:012d}.jpg'
            if not cv2.imwrite(str(folder / name), img, [cv2.IMWRITE_JPEG_QUALITY, 95]):
                raise OSError(f'could not write {folder / name}')
            images.append(dict(id=img_id, file_name=name, height=h, width=w))
        ann = dict(images=images, annotations=annotations, categories=categories)
        Path(root, 'annotations', f'instances_{split}2017.json').write_text(json.dumps(ann))
        counts[split] = n
    return counts


def _pink_noise(h: int, w: int, alpha: float, rng: np.random.Generator) -> np.ndarray:
    """``[h, w]`` float noise of unit variance with a 1/f^alpha amplitude spectrum."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx ** 2 + fy ** 2)
    f[0, 0] = 1.0
    spec = (rng.standard_normal((h, fx.shape[1])) + 1j * rng.standard_normal((h, fx.shape[1])))
    spec /= f ** alpha
    spec[0, 0] = 0
    noise = np.fft.irfft2(spec, s=(h, w))
    return noise / (noise.std() + 1e-8)


def _render_photo(kind: str, size: Tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """One ``[h, w, 3]`` uint8 BGR image with the statistics of a photograph.

    A dead-leaves background (occluding ellipses with power-law sizes, the
    classic model of natural-image statistics) behind the class's shape,
    textured by 1/f noise, with sensor noise and a slight optical blur. At
    500x375 and JPEG quality 90 the files are ~100 KB, as ImageNet's are, so
    that decoding costs what it costs on ImageNet.
    """
    h, w = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = rng.integers(0, 256, 3)
    palette = rng.integers(0, 256, size=(6, 3))
    n = int(rng.integers(800, 2000))
    rmin, rmax = 4.0, max(h, w) / 3
    radii = 1 / np.sqrt(1 / rmin ** 2 - rng.random(n) * (1 / rmin ** 2 - 1 / rmax ** 2))  # p(r) ~ r^-3
    colours = np.clip(palette[rng.integers(0, 6, n)] + rng.normal(0, 25, (n, 3)), 0, 255).astype(int)
    centres = np.stack([rng.integers(0, w, n), rng.integers(0, h, n)], 1)
    axes = np.stack([radii, radii * rng.uniform(0.4, 1.0, n)], 1).astype(int)
    angles = rng.uniform(0, 180, n)
    for leaf in zip(colours.tolist(), centres.tolist(), axes.tolist(), angles.tolist()):
        colour, centre, ax, angle = leaf
        cv2.ellipse(img, centre, ax, angle, 0, 360, colour, -1, cv2.LINE_AA)
    side = min(h, w)
    obj = _render(kind, side // 2, rng)  # the class's shape, as in the small demo images
    y, x = int(rng.integers(0, h - side // 2 + 1)), int(rng.integers(0, w - side // 2 + 1))
    img[y:y + side // 2, x:x + side // 2] = obj
    texture = _pink_noise(h, w, float(rng.uniform(0.7, 1.1)), rng).astype(np.float32)
    out = img.astype(np.float32) * (1 + 0.25 * texture[..., None])
    out += rng.standard_normal(out.shape, dtype=np.float32) * 4
    out = cv2.GaussianBlur(out, (0, 0), 0.5)
    return np.clip(out, 0, 255).astype(np.uint8)


def make_realsize_images(root: str, num_per_class: int = 512, size: Tuple[int, int] = (375, 500),
                         quality: int = 90, seed: int = 0) -> int:
    """Write ``root/train/<class>/<class>_NNNN.jpg`` and ``root/meta/train.txt`` at real size.

    ImageNet-like JPEGs (default 500x375, quality 90, about 100 KB each; see
    :func:`_render_photo`) for measuring data loading, where the small demo
    images would hide the decoding cost. Same layout and classes as
    :func:`make_demo_images`; ``size`` is (height, width). The output is a
    pure function of the arguments. Returns the number of images.
    """
    rng = np.random.default_rng(seed)
    Path(root, 'meta').mkdir(parents=True, exist_ok=True)
    lines = []
    for label, kind in enumerate(CLASSES):
        folder = Path(root, 'train', kind)
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(num_per_class):
            name = f'{kind}_{i:04d}.jpg'
            path = osp.join(str(folder), name)
            img = _render_photo(kind, size, rng)
            if not cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, quality]):
                raise OSError(f'could not write {path}')
            lines.append(f'{kind}/{name} {label}\n')
    Path(root, 'meta', 'train.txt').write_text(''.join(lines))
    return len(lines)


def caption_of(attributes: dict) -> Tuple[str, str]:
    """The two captions of a captioned demo image, from its attributes."""
    shape = f'{attributes["color"]} {SHAPE_NOUNS[attributes["shape"]]}'
    c0, c1 = attributes['background']
    return (f'a {shape} on a {c0} to {c1} gradient, {attributes["position"]}',
            f'a {shape} in the {attributes["position"]}')


def _render_captioned(attributes: dict, size: int, rng: np.random.Generator) -> np.ndarray:
    """One ``[size, size, 3]`` uint8 BGR image showing ``attributes``.

    A horizontal or vertical gradient between the two background colours,
    and the shape, of radius ``size/8`` to ``size/5``, centred near the
    middle of its quadrant; stripes and checker are a square patch whose
    cells alternate between the shape colour and the background.
    """
    c0, c1 = (np.array(PALETTE[c], np.float64) for c in attributes['background'])
    t = np.linspace(0.0, 1.0, size)[:, None, None]  # [size, 1, 1]
    if rng.random() < 0.5:
        t = t.transpose(1, 0, 2)  # [1, size, 1]
    img = np.ascontiguousarray(np.broadcast_to((1 - t) * c0 + t * c1, (size, size, 3)))
    fg = PALETTE[attributes['color']]
    col = attributes['position'].endswith('right')
    row = attributes['position'].startswith('lower')
    q = size / 2
    cx = int(round(q * col + q / 2 + rng.uniform(-size / 16, size / 16)))
    cy = int(round(q * row + q / 2 + rng.uniform(-size / 16, size / 16)))
    r = int(rng.integers(max(4, size // 8), max(5, size // 5) + 1))
    kind = attributes['shape']
    if kind == 'disc':
        cv2.circle(img, (cx, cy), r, fg, -1, cv2.LINE_AA)
    elif kind == 'ring':
        cv2.circle(img, (cx, cy), r, fg, max(2, r // 3), cv2.LINE_AA)
    else:
        ys, xs = np.mgrid[:size, :size]
        inside = (abs(xs - cx) <= r) & (abs(ys - cy) <= r)
        cell = max(2, r // 2)
        if kind == 'stripes':
            on = ((xs - cx + ys - cy) // cell) % 2 == 0
        elif kind == 'checker':
            on = (((xs - cx) // cell) + ((ys - cy) // cell)) % 2 == 0
        else:
            raise KeyError(kind)
        img[inside & on] = fg
    noise = rng.normal(0, 3, size=img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make_demo_captions(root: str, num_train: int = 512, num_val: int = 64, size: int = 64,
                       seed: int = 0) -> Dict[str, int]:
    """Write a captioned image set: ``images/{train,val}/NNNNNN.jpg`` and
    ``annotations/captions_{train,val}.json`` (COCO-captions style).

    Each image shows one shape of :data:`CLASSES` in a colour of
    :data:`COLORS`, in a quadrant of :data:`POSITIONS`, on a gradient of two
    :data:`BACKGROUNDS` colours. Every image entry keeps these under
    ``attributes``, so generated images and captions can be judged; each
    image has the two captions of :func:`caption_of`. The output is a pure
    function of the arguments. Returns the number of images per split.
    """
    rng = np.random.default_rng(seed)
    counts = {}
    Path(root, 'annotations').mkdir(parents=True, exist_ok=True)
    for split, n in (('train', num_train), ('val', num_val)):
        folder = Path(root, 'images', split)
        folder.mkdir(parents=True, exist_ok=True)
        images, annotations = [], []
        for img_id in range(1, n + 1):
            c0, c1 = rng.choice(len(BACKGROUNDS), size=2, replace=False)
            attributes = dict(shape=CLASSES[int(rng.integers(len(CLASSES)))],
                              color=COLORS[int(rng.integers(len(COLORS)))],
                              background=[BACKGROUNDS[int(c0)], BACKGROUNDS[int(c1)]],
                              position=POSITIONS[int(rng.integers(len(POSITIONS)))])
            name = f'{img_id:06d}.jpg'
            path = str(folder / name)
            # full-resolution chroma (4:4:4), so that small cells keep their colour
            if not cv2.imwrite(path, _render_captioned(attributes, size, rng),
                               [cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]):
                raise OSError(f'could not write {path}')
            images.append(dict(id=img_id, file_name=name, height=size, width=size,
                               attributes=attributes))
            for caption in caption_of(attributes):
                annotations.append(dict(id=len(annotations) + 1, image_id=img_id, caption=caption))
        ann = dict(images=images, annotations=annotations, categories=[])
        Path(root, 'annotations', f'captions_{split}.json').write_text(json.dumps(ann, indent=1))
        counts[split] = n
    return counts
