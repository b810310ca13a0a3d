"""Absolute position embeddings: fixed 2D sin-cos tables and resizing."""
from typing import Tuple

import torch
import torch.nn.functional as F


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """Sin-cos embedding of 1D positions: ``[M] -> [M, dim]`` (sin half, cos half)."""
    assert dim % 2 == 0, f'sin-cos embedding needs an even dim, got {dim}'
    omega = 1.0 / 10000**(torch.arange(dim // 2, dtype=torch.float64) / (dim / 2.0))
    angles = positions.double()[:, None] * omega[None]  # [M, dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def sincos_2d(grid_hw: Tuple[int, int], dim: int, num_extra_tokens: int = 0) -> torch.Tensor:
    """Fixed 2D sin-cos table of the MAE paper, ``[1, extra + h*w, dim]`` (fp32).

    The first half of the channels encodes the column (x) coordinate, the
    second half the row (y) coordinate; extra tokens (class token) get zeros.
    """
    assert dim % 4 == 0, f'2D sin-cos embedding needs dim divisible by 4, got {dim}'
    h, w = grid_hw
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
    emb = torch.cat([sincos_1d(xs.flatten(), dim // 2),
                     sincos_1d(ys.flatten(), dim // 2)], dim=1)  # [h*w, dim]
    emb = torch.cat([emb.new_zeros(num_extra_tokens, dim), emb])
    return emb.float().unsqueeze(0)


def resize_pos_embed(pos_embed: torch.Tensor,
                     src_hw: Tuple[int, int],
                     dst_hw: Tuple[int, int],
                     num_extra_tokens: int = 1,
                     mode: str = 'bicubic') -> torch.Tensor:
    """Resize a ``[1, extra + h*w, C]`` table to another patch grid.

    Extra tokens (class token) are kept as they are; the grid part is
    interpolated in fp32 (torch only). Same size returns the input unchanged.
    """
    if tuple(src_hw) == tuple(dst_hw):
        return pos_embed
    extra, grid = pos_embed[:, :num_extra_tokens], pos_embed[:, num_extra_tokens:]
    assert grid.shape[1] == src_hw[0] * src_hw[1], \
        f'pos_embed has {grid.shape[1]} grid tokens, expected {src_hw[0]}x{src_hw[1]}'
    dim = grid.shape[-1]
    grid = grid.reshape(1, *src_hw, dim).permute(0, 3, 1, 2).float()  # [1, C, h, w]
    grid = F.interpolate(grid, size=tuple(dst_hw), mode=mode, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim).to(pos_embed.dtype)  # [1, h'*w', C]
    return torch.cat([extra, grid], dim=1)
