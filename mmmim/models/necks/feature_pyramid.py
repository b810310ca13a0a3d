"""Multi-scale maps from a plain ViT's single-scale outputs (BEiT / MAE segmentation)."""
from typing import Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS

NORMS = {'BN': nn.BatchNorm2d, 'SyncBN': nn.SyncBatchNorm}


@MODELS.register_module()
class FeaturePyramid(BaseModule):
    """Rescale the i-th input map by ``rescales[i]``: 4x, 2x, 1x, 0.5x.

    4x is two stride-2 transposed convolutions with norm and GELU between,
    2x one transposed convolution, 1x the identity, 0.5x a 2x2 max-pool.
    Inputs ``[B, C, h, w]`` of a stride-16 ViT become strides 4, 8, 16, 32.

    Args:
        embed_dim: Channels of the input maps (kept).
        rescales: Scale factor per input, from {4, 2, 1, 0.5}.
        norm: ``'BN'`` or ``'SyncBN'`` (multi-GPU training).
    """

    def __init__(self, embed_dim: int, rescales: Sequence[float] = (4, 2, 1, 0.5),
                 norm: str = 'BN', init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if norm not in NORMS:
            raise KeyError(f'norm must be one of {sorted(NORMS)}, got {norm!r}')
        self.rescales = tuple(rescales)
        ops = []
        for s in self.rescales:
            if s == 4:
                ops.append(nn.Sequential(
                    nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2), NORMS[norm](embed_dim),
                    nn.GELU(), nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2)))
            elif s == 2:
                ops.append(nn.ConvTranspose2d(embed_dim, embed_dim, 2, 2))
            elif s == 1:
                ops.append(nn.Identity())
            elif s == 0.5:
                ops.append(nn.MaxPool2d(2, 2))
            else:
                raise ValueError(f'rescale {s} is not one of 4, 2, 1, 0.5')
        self.ops = nn.ModuleList(ops)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.ops):
            raise ValueError(f'FeaturePyramid has {len(self.ops)} rescales, got {len(inputs)} maps')
        return tuple(op(x) for op, x in zip(self.ops, inputs))
