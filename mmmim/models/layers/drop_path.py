"""Stochastic depth (Huang et al., 2016) applied per sample on residual branches."""
import torch
from torch import nn


class DropPath(nn.Module):
    """Drop the whole residual branch of a sample with probability ``p``."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0], ) + (1, ) * (x.ndim - 1)  # [B, 1, ..., 1]
        return x * x.new_empty(shape).bernoulli_(keep).div_(keep)

    def extra_repr(self) -> str:
        return f'p={self.p}'
