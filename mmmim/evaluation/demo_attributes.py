"""Judging images and captions of the captioned demo data by their known attributes.

Images: the shape's colour is the palette colour most pixels are nearest to
(among the 4 shape and 4 background colours, within ``max_dist``); its
pixels form the shape's mask, whose centroid gives the quadrant and whose
cropped, resized outline is matched to the masks of real training images
(k nearest neighbours) for the shape. The judge is measured on real images
(:func:`judge_images` on the validation set) before it judges generated ones.

Captions: the shape noun, colour and quadrant words they contain.
"""
from typing import Dict, List, Optional, Sequence

import cv2
import numpy as np

from mmmim.datasets.demo import BACKGROUNDS, COLORS, PALETTE, POSITIONS, SHAPE_NOUNS

_NAMES = COLORS + BACKGROUNDS
_RGB = np.array([PALETTE[c][::-1] for c in _NAMES], np.float32)  # [8, 3]


def shape_mask(img_rgb: np.ndarray, max_dist: float = 90.0, min_pixels: int = 3):
    """The shape's colour name (or None) and its boolean mask ``[H, W]``, of an RGB uint8 image."""
    px = img_rgb.reshape(-1, 3).astype(np.float32)
    dist = np.linalg.norm(px[:, None] - _RGB[None], axis=-1)  # [H*W, 8]
    nearest = dist.argmin(1)
    close = dist.min(1) <= max_dist
    counts = [int(((nearest == i) & close).sum()) for i in range(len(COLORS))]
    best = int(np.argmax(counts))
    if counts[best] < min_pixels:
        return None, np.zeros(img_rgb.shape[:2], bool)
    return COLORS[best], ((nearest == best) & close).reshape(img_rgb.shape[:2])


def _outline(mask: np.ndarray, side: int = 16) -> np.ndarray:
    """The mask cropped to its bounding box and resized to ``side`` x ``side``, flattened."""
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return np.zeros(side * side, np.float32)
    crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.float32)
    out = cv2.resize(crop, (side, side), interpolation=cv2.INTER_AREA).flatten()
    return out - out.mean()


def _quadrant(mask: np.ndarray) -> Optional[str]:
    ys, xs = np.nonzero(mask)
    if len(ys) == 0:
        return None
    h, w = mask.shape
    row = 'lower' if ys.mean() >= h / 2 else 'upper'
    return f'{row} {"right" if xs.mean() >= w / 2 else "left"}'


class DemoJudge:
    """Colour, quadrant and shape of demo images; the shape by k-NN on real training masks."""

    def __init__(self, k: int = 5):
        self.k = k
        self.bank, self.labels = None, None

    def fit(self, images: Sequence[np.ndarray], shapes: Sequence[str]) -> 'DemoJudge':
        self.bank = np.stack([_outline(shape_mask(img)[1]) for img in images])  # [M, side^2]
        self.bank /= np.linalg.norm(self.bank, axis=1, keepdims=True) + 1e-6
        self.labels = np.array(shapes)
        return self

    def __call__(self, img_rgb: np.ndarray) -> Dict[str, Optional[str]]:
        colour, mask = shape_mask(img_rgb)
        if colour is None:
            return dict(shape=None, color=None, position=None)
        f = _outline(mask)
        sims = self.bank @ (f / (np.linalg.norm(f) + 1e-6))
        votes = self.labels[np.argsort(-sims)[:self.k]]
        names, counts = np.unique(votes, return_counts=True)
        return dict(shape=str(names[counts.argmax()]), color=colour, position=_quadrant(mask))


def caption_attributes(caption: str) -> Dict[str, Optional[str]]:
    """Shape, colour and quadrant named in a caption (None where it names none)."""
    text = caption.lower()
    shape = next((s for s, noun in sorted(SHAPE_NOUNS.items(), key=lambda kv: -len(kv[1]))
                  if noun in text), None)
    first = {}
    for kind, words in (('color', COLORS), ('position', POSITIONS)):
        found = [(text.find(w), w) for w in words if w in text]
        first[kind] = min(found)[1] if found else None
    return dict(shape=shape, color=first['color'], position=first['position'])


def attribute_accuracy(predicted: List[dict], truth: List[dict]) -> Dict[str, float]:
    """Per-attribute accuracy, and the fraction with shape and colour both right (the prompt
    accuracy)."""
    out = {}
    for key in ('shape', 'color', 'position'):
        out[key] = float(np.mean([p[key] == t[key] for p, t in zip(predicted, truth)]))
    out['shape+color'] = float(np.mean([p['shape'] == t['shape'] and p['color'] == t['color']
                                        for p, t in zip(predicted, truth)]))
    return out


def judge_images(judge: DemoJudge, images: Sequence[np.ndarray],
                 truth: List[dict]) -> Dict[str, float]:
    """:func:`attribute_accuracy` of the judge's reading of ``images`` against ``truth``."""
    return attribute_accuracy([judge(img) for img in images], truth)
