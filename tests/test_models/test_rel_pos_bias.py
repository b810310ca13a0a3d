"""Resizing BEiT relative position tables: BEiT's geometric rule, against timm's implementation."""
import pytest
import torch
from timm.layers import resize_rel_pos_bias_table

from mmmim.models.layers import resize_rel_pos_table


def table(window, heads=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((2 * window[0] - 1) * (2 * window[1] - 1) + 3, heads, generator=g)


@pytest.mark.parametrize('src, dst', [((14, 14), (40, 40)),  # ADE20K at 640 from 224
                                      ((14, 14), (32, 32)), ((4, 4), (6, 3)), ((14, 14), (7, 7))])
def test_resize_matches_timm(src, dst):
    t = table(src)
    shape = ((2 * dst[0] - 1) * (2 * dst[1] - 1) + 3, t.shape[1])
    ref = resize_rel_pos_bias_table(t, dst, shape, old_window_size=src)
    out = resize_rel_pos_table(t, dst, src_window=src)
    assert out.shape == shape
    assert (out - ref).abs().max() <= 1e-4


def test_nearby_offsets_keep_their_bias():
    """27 -> 79 offsets per axis: offsets 0 and +-1 keep their values, the class entries too."""
    t = table((14, 14))
    out = resize_rel_pos_table(t, (40, 40))
    src = t[:-3].T.reshape(3, 27, 27)
    dst = out[:-3].T.reshape(3, 79, 79)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            assert torch.allclose(dst[:, 39 + dy, 39 + dx], src[:, 13 + dy, 13 + dx], atol=1e-6)
    assert torch.equal(out[-3:], t[-3:])
    assert resize_rel_pos_table(t, (14, 14)) is t
