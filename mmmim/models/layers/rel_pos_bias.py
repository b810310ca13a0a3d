"""Relative position bias of BEiT (Bao et al., 2022), shared or per layer."""
from typing import Tuple

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


class RelativePositionBias(nn.Module):
    """One bias table shared by all blocks (BEiT pretraining)."""

    def __init__(self, window: Tuple[int, int], num_heads: int):
        super().__init__()
        self.window = tuple(window)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros(num_relative_distances(self.window), num_heads))
        self.register_buffer(
            'relative_position_index', relative_position_index(self.window), persistent=False)

    def forward(self) -> torch.Tensor:
        return gather_bias(self.relative_position_bias_table, self.relative_position_index)
