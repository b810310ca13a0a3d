"""Relative position bias of BEiT (Bao et al., 2022), shared or per layer."""
import math
from functools import lru_cache
from typing import Dict, Tuple

import torch
from torch import nn


def num_relative_distances(window: Tuple[int, int]) -> int:
    """Rows of the bias table: all 2D offsets plus cls->token, token->cls, cls->cls."""
    return (2 * window[0] - 1) * (2 * window[1] - 1) + 3


def relative_position_index(window: Tuple[int, int]) -> torch.Tensor:
    """Index into the bias table for every (query, key) pair: ``[1+h*w, 1+h*w]``."""
    h, w = window
    coords = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij'))
    coords = coords.flatten(1)  # [2, h*w]
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)  # [h*w, h*w, 2]
    rel[..., 0] += h - 1
    rel[..., 1] += w - 1
    index = torch.zeros(h * w + 1, h * w + 1, dtype=torch.long)
    index[1:, 1:] = rel[..., 0] * (2 * w - 1) + rel[..., 1]
    n = num_relative_distances(window)
    index[0, 0:] = n - 3  # cls -> token
    index[0:, 0] = n - 2  # token -> cls
    index[0, 0] = n - 1  # cls -> cls
    return index


def gather_bias(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Bias for attention from a ``[rows, heads]`` table: ``[heads, N, N]``."""
    n = index.shape[0]
    return table[index.view(-1)].view(n, n, -1).permute(2, 0, 1).contiguous()


NUM_CLS_ENTRIES = 3  # cls->token, token->cls, cls->cls


def rel_pos_window(num_rows: int) -> Tuple[int, int]:
    """The square patch grid of a BEiT table with ``num_rows`` rows."""
    side = math.isqrt(num_rows - NUM_CLS_ENTRIES)
    if side * side != num_rows - NUM_CLS_ENTRIES or side % 2 == 0:
        raise ValueError(f'a relative position table of {num_rows} rows is not (2h-1)^2 + 3')
    return (side + 1) // 2, (side + 1) // 2


@lru_cache(maxsize=64)
def geometric_resize_weights(src: int, dst: int) -> torch.Tensor:
    """Interpolation weights ``[dst, src]`` from ``src`` to ``dst`` relative offsets (odd counts).

    BEiT's rule (unilm#376): the source offsets are laid on the target axis
    with offset 0 and +-1 in place and gaps growing geometrically by ``q``,
    found by bisection in [1.01, 1.5] so that the outermost one lands near
    ``dst // 2``; each target offset is then interpolated linearly between
    its neighbours (clamped at the ends). Nearby offsets, which carry most of
    the bias, so keep their values instead of being stretched apart.
    """
    n = src // 2
    lo, hi = 1.01, 1.5
    while hi - lo > 1e-6:
        q = (lo + hi) / 2
        if (q**n - 1) / (q - 1) > dst // 2:
            hi = q
        else:
            lo = q
    pos = torch.cumsum(q**torch.arange(n, dtype=torch.float64), 0)  # 1, 1 + q, 1 + q + q^2, ...
    src_pos = torch.cat([-pos.flip(0), torch.zeros(1, dtype=torch.float64), pos])  # [src]
    dst_pos = torch.arange(dst, dtype=torch.float64) - dst // 2  # [dst]
    weights = torch.zeros(dst, src, dtype=torch.float64)
    if src == 1:
        return weights.add_(1).float()
    right = torch.searchsorted(src_pos, dst_pos).clamp(1, src - 1)  # [dst]
    left = right - 1
    frac = ((dst_pos - src_pos[left]) / (src_pos[right] - src_pos[left])).clamp(0, 1)
    rows = torch.arange(dst)
    weights[rows, left] = 1 - frac
    weights[rows, right] += frac
    return weights.float()


def resize_rel_pos_table(table: torch.Tensor, dst_window: Tuple[int, int],
                         src_window=None) -> torch.Tensor:
    """Resize a ``[(2h-1)*(2w-1) + 3, heads]`` table to another patch grid.

    The offset grid is resampled along each axis with
    :func:`geometric_resize_weights` (fp32); the three class-token entries
    are kept. The same grid returns the table unchanged. The source grid is
    taken as square unless ``src_window`` is given.
    """
    src = tuple(src_window) if src_window is not None else rel_pos_window(table.shape[0])
    if tuple(src) == tuple(dst_window):
        return table
    heads = table.shape[1]
    grid, extra = table[:-NUM_CLS_ENTRIES], table[-NUM_CLS_ENTRIES:]
    grid = grid.T.reshape(heads, 2 * src[0] - 1, 2 * src[1] - 1).float()  # [heads, Hs, Ws]
    w_y = geometric_resize_weights(2 * src[0] - 1, 2 * dst_window[0] - 1).to(grid.device)
    w_x = geometric_resize_weights(2 * src[1] - 1, 2 * dst_window[1] - 1).to(grid.device)
    grid = torch.einsum('ys,hst,xt->hyx', w_y, grid, w_x)  # [heads, Hd, Wd]
    grid = grid.reshape(heads, -1).T.to(table.dtype)  # [(2h'-1)*(2w'-1), heads]
    return torch.cat([grid, extra])


def bias_for_grid(table: torch.Tensor, window: Tuple[int, int], grid: Tuple[int, int],
                  index_cache: Dict[Tuple[int, int], torch.Tensor]) -> torch.Tensor:
    """``[heads, 1+h*w, 1+h*w]`` bias of a table built for ``window``, at patch ``grid``.

    At another grid the table is resized (BEiT's geometric rule) on the fly, so inputs of
    other sizes (multi-scale testing, small sliding windows) keep working.
    """
    grid = tuple(grid)
    if grid != tuple(window):
        table = resize_rel_pos_table(table, grid, src_window=window)
    key = (grid, table.device)
    if key not in index_cache:
        index_cache[key] = relative_position_index(grid).to(table.device)
    return gather_bias(table, index_cache[key])


class RelativePositionBias(nn.Module):
    """One bias table shared by all blocks (BEiT pretraining)."""

    def __init__(self, window: Tuple[int, int], num_heads: int):
        super().__init__()
        self.window = tuple(window)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(num_relative_distances(self.window), num_heads))
        self._index = {}

    def forward(self, grid: Tuple[int, int]) -> torch.Tensor:
        """Bias ``[heads, 1+h*w, 1+h*w]`` for a patch grid."""
        return bias_for_grid(self.relative_position_bias_table, self.window, grid, self._index)
