"""Non-overlapping window partition of a token grid (ViTDet's windowed attention)."""
from typing import Tuple

import torch
import torch.nn.functional as F


def window_partition(x: torch.Tensor, grid: Tuple[int, int],
                     window_size: int) -> Tuple[torch.Tensor, Tuple[int, int]]:
    """Cut ``[B, h*w, C]`` tokens into ``window_size`` x ``window_size`` windows.

    A grid that is not a multiple of the window is padded with zero tokens
    at the bottom and on the right first (the padding takes part in the
    windows' attention, as in ViTDet).

    Returns:
        Windows ``[B * nh * nw, window_size**2, C]`` (row-major over the
        windows of each image) and the padded grid ``(nh * ws, nw * ws)``.
    """
    B, N, C = x.shape
    h, w = grid
    assert N == h * w, f'{N} tokens do not form a {h}x{w} grid'
    ws = window_size
    x = x.view(B, h, w, C)
    pad_h, pad_w = -h % ws, -w % ws
    if pad_h or pad_w:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # [B, Hp, Wp, C]
    Hp, Wp = h + pad_h, w + pad_w
    x = x.view(B, Hp // ws, ws, Wp // ws, ws, C).permute(0, 1, 3, 2, 4, 5)  # [B, nh, nw, ws, ws, C]
    return x.reshape(-1, ws * ws, C), (Hp, Wp)


def window_unpartition(windows: torch.Tensor, grid: Tuple[int, int], padded: Tuple[int, int],
                       window_size: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: windows back to ``[B, h*w, C]``, padding removed."""
    h, w = grid
    Hp, Wp = padded
    ws = window_size
    C = windows.shape[-1]
    B = windows.shape[0] // ((Hp // ws) * (Wp // ws))
    x = windows.view(B, Hp // ws, Wp // ws, ws, ws, C)
    x = x.permute(0, 1, 3, 2, 4, 5)  # [B, nh, ws, nw, ws, C]
    x = x.reshape(B, Hp, Wp, C)[:, :h, :w]
    return x.reshape(B, h * w, C)
