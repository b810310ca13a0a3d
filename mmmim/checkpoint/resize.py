"""Resizing relative position tables and expanding a shared table per layer (torch only)."""
import math
from typing import Dict, Tuple

import torch
import torch.nn.functional as F

NUM_CLS_ENTRIES = 3  # cls->token, token->cls, cls->cls


def rel_pos_window(num_rows: int) -> Tuple[int, int]:
    """The square patch grid of a BEiT table with ``num_rows`` rows."""
    side = math.isqrt(num_rows - NUM_CLS_ENTRIES)
    if side * side != num_rows - NUM_CLS_ENTRIES or side % 2 == 0:
        raise ValueError(f'a relative position table of {num_rows} rows is not (2h-1)^2 + 3')
    return (side + 1) // 2, (side + 1) // 2


def resize_rel_pos_table(table: torch.Tensor, dst_window: Tuple[int, int],
                         mode: str = 'bicubic') -> torch.Tensor:
    """Resize a ``[(2h-1)*(2w-1) + 3, heads]`` table to another patch grid.

    The offset grid is interpolated (``mode``, fp32); the three class-token
    entries are kept. The same grid returns the table unchanged.
    """
    src = rel_pos_window(table.shape[0])
    if tuple(src) == tuple(dst_window):
        return table
    heads = table.shape[1]
    grid, extra = table[:-NUM_CLS_ENTRIES], table[-NUM_CLS_ENTRIES:]
    grid = grid.T.reshape(1, heads, 2 * src[0] - 1, 2 * src[1] - 1).float()
    dst = (2 * dst_window[0] - 1, 2 * dst_window[1] - 1)
    grid = F.interpolate(grid, size=dst, mode=mode, align_corners=False)
    grid = grid.reshape(heads, -1).T.to(table.dtype)  # [(2h'-1)*(2w'-1), heads]
    return torch.cat([grid, extra])


def expand_shared_rel_pos_bias(state_dict: Dict[str, torch.Tensor], depth: int,
                               prefix: str = '') -> Dict[str, torch.Tensor]:
    """Copy ``rel_pos_bias.relative_position_bias_table`` into every block's attention.

    BEiT pretrains with one shared table and fine-tunes with one per layer
    initialised from it. Returns a new dict without the shared key.
    """
    out = dict(state_dict)
    table = out.pop(prefix + 'rel_pos_bias.relative_position_bias_table')
    for i in range(depth):
        out[f'{prefix}blocks.{i}.attn.relative_position_bias_table'] = table.clone()
    return out
