"""Expanding a shared relative position table per layer."""
from typing import Dict

import torch

from mmmim.models.layers.rel_pos_bias import resize_rel_pos_table

__all__ = ['expand_shared_rel_pos_bias', 'resize_rel_pos_table']


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
