"""Decomposed relative positions of MViTv2 / ViTDet (Li et al., 2022).

Each block learns one embedding per row offset (``rel_pos_h``, ``[2h-1, d]``)
and per column offset (``rel_pos_w``, ``[2w-1, d]``); the attention logit of
query ``(i, j)`` and key ``(k, l)`` gets ``q . (R_h[i - k] + R_w[j - l])``.
"""
from typing import Tuple

import torch
import torch.nn.functional as F


def resize_rel_pos(rel_pos: torch.Tensor, length: int) -> torch.Tensor:
    """Linearly interpolate a ``[L, d]`` offset table to ``[length, d]`` (fp32).

    As detectron2's ``get_rel_pos`` (``align_corners=False``); a table of the
    right length is returned unchanged.
    """
    if rel_pos.shape[0] == length:
        return rel_pos
    table = rel_pos.T.unsqueeze(0).float()  # [1, d, L]
    table = F.interpolate(table, size=length, mode='linear', align_corners=False)
    return table[0].T.to(rel_pos.dtype)  # [length, d]


def rel_pos_pairs(rel_pos: torch.Tensor, size: int) -> torch.Tensor:
    """Offset embedding of every (query, key) pair on an axis of ``size``: ``[size, size, d]``.

    The table is resized to ``2 * size - 1`` offsets first if it has another length.
    """
    table = resize_rel_pos(rel_pos, 2 * size - 1)
    pos = torch.arange(size, device=rel_pos.device)
    return table[pos[:, None] - pos[None, :] + size - 1]


def decomposed_rel_pos_bias(q: torch.Tensor, rel_pos_h: torch.Tensor, rel_pos_w: torch.Tensor,
                            grid: Tuple[int, int]) -> torch.Tensor:
    """Query-dependent attention bias of decomposed relative positions.

    Args:
        q: Unscaled queries on a patch grid, ``[B, heads, h*w, d]``.
        rel_pos_h: Row-offset table ``[2h'-1, d]`` (resized if ``h' != h``).
        rel_pos_w: Column-offset table ``[2w'-1, d]`` (resized if ``w' != w``).
        grid: ``(h, w)``.

    Returns:
        ``[B, heads, h*w, h*w]``, to add to the scaled logits.
    """
    h, w = grid
    B, heads, N, d = q.shape
    assert N == h * w, f'{N} queries do not form a {h}x{w} grid'
    q = q.reshape(B, heads, h, w, d)
    R_h = rel_pos_pairs(rel_pos_h, h).to(q.dtype)  # [h, h, d]
    R_w = rel_pos_pairs(rel_pos_w, w).to(q.dtype)  # [w, w, d]
    bias_h = torch.einsum('bnijc,ikc->bnijk', q, R_h)  # [B, heads, h, w, h]
    bias_w = torch.einsum('bnijc,jlc->bnijl', q, R_w)  # [B, heads, h, w, w]
    return (bias_h[..., :, None] + bias_w[..., None, :]).reshape(B, heads, N, N)
