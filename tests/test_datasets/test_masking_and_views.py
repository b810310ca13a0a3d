"""Block masks, the two-view crop and the two-view preprocessor."""
import random

import numpy as np
import pytest
import torch
from mmengine.structures import BaseDataElement

from mmmim.datasets import (BlockwiseMaskGenerator, RandomResizedCropTwoViews,
                            TwoViewDataPreprocessor)


def _bbox(mask):
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


@pytest.mark.parametrize('num', [75, 98])
def test_block_masks_have_the_exact_count_and_are_blocky(num):
    random.seed(0)
    np.random.seed(0)
    gen = BlockwiseMaskGenerator(14, num_masking_patches=num, min_num_patches=16)
    before = BlockwiseMaskGenerator.num_topped_up
    neighbour_fraction = []
    for _ in range(300):
        mask = gen({})['mask']
        assert mask.shape == (14, 14) and mask.dtype == bool
        assert mask.sum() == num
        padded = np.pad(mask, 1)
        has_neighbour = (padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:])
        neighbour_fraction.append((has_neighbour & mask).sum() / num)
    # Blocks: nearly every masked patch touches another one; scattered random
    # masks of the same density have ~10% isolated patches at 75/196.
    assert np.mean(neighbour_fraction) > 0.98
    # the official loop falls short on about a third of the draws (1-2 patches)
    assert BlockwiseMaskGenerator.num_topped_up - before < 0.5 * 300


def test_one_block_is_a_rectangle_of_the_configured_area_and_aspect():
    random.seed(1)
    gen = BlockwiseMaskGenerator(14, num_masking_patches=75, min_num_patches=16, min_aspect=0.3)
    for _ in range(300):
        mask = np.zeros((14, 14), dtype=bool)
        added = gen._add_block(mask, 40)
        assert added == mask.sum()
        if added == 0:
            continue
        top, bottom, left, right = _bbox(mask)
        h, w = bottom - top, right - left
        assert mask[top:bottom, left:right].all()  # one filled rectangle
        # area in [16, 40] and aspect in [0.3, 1/0.3] up to rounding each side to a patch
        assert (np.sqrt(16) - 0.5)**2 * 0.9 <= h * w <= 40
        # h, w are rounded from reals whose ratio is in range
        assert 0.3 * h / (h + .5) * (w - .5) / w <= h / w <= h / (h - .5) * (w + .5) / w / 0.3


def test_mask_generator_rejects_impossible_counts():
    with pytest.raises(ValueError, match='num_masking_patches'):
        BlockwiseMaskGenerator(14, num_masking_patches=197)


def test_two_views_come_from_one_crop(monkeypatch):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    t = RandomResizedCropTwoViews(scale=32, second_scale=16, interpolation='bicubic',
                                  second_interpolation='lanczos', backend='pillow')
    monkeypatch.setattr(t, 'rand_crop_params', lambda _: (5, 7, 30, 40))
    out = t({'img': img})
    patch_view, token_view = out['img']
    from PIL import Image
    crop = Image.fromarray(img[5:35, 7:47])
    np.testing.assert_array_equal(patch_view, np.asarray(crop.resize((32, 32), Image.BICUBIC)))
    np.testing.assert_array_equal(token_view, np.asarray(crop.resize((16, 16), Image.LANCZOS)))
    assert out['img_shape'] == (32, 32)


def test_two_view_preprocessor_normalises_each_view_its_own_way():
    pre = TwoViewDataPreprocessor(mean=[127.5] * 3, std=[127.5] * 3, to_rgb=True)
    a = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    b = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    samples = [BaseDataElement(), BaseDataElement()]
    out = pre({'inputs': [a, b], 'data_samples': samples})
    patch_view, token_view = out['inputs']
    torch.testing.assert_close(patch_view, a.flip(1).float() / 127.5 - 1)
    # DALL-E's map_pixels: (1 - 2 * eps) * x + eps on [0, 1] pixels, eps = 0.1
    torch.testing.assert_close(token_view, 0.8 * b.flip(1).float() / 255 + 0.1)
    with pytest.raises(ValueError, match='two views'):
        pre({'inputs': a, 'data_samples': samples})
