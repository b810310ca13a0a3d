"""ViTDet's simple feature pyramid (Li et al., 2022) from a plain ViT's last map."""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS
from ..layers import LayerNorm2d


NORMS = ('LN', 'BN', 'SyncBN')


def _norm(norm: str, channels: int) -> nn.Module:
    """The pyramid's channel norm: LayerNorm (ViTDet), BatchNorm or SyncBatchNorm."""
    if norm == 'LN':
        return LayerNorm2d(channels, eps=1e-6)
    return nn.BatchNorm2d(channels) if norm == 'BN' else nn.SyncBatchNorm(channels)


def _conv_norm(in_channels: int, out_channels: int, kernel_size: int, norm: str) -> nn.Sequential:
    """Bias-free convolution then the channel norm (no activation)."""
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
    nn.init.kaiming_uniform_(conv.weight, a=1)  # Caffe2's xavier fill, as in detectron2
    return nn.Sequential(conv, _norm(norm, out_channels))


@MODELS.register_module()
class SimpleFeaturePyramid(BaseModule):
    """Multi-scale maps from the last ``[B, C, h, w]`` map of a stride-``s`` ViT.

    Each scale factor makes one level: 4x is two stride-2 transposed
    convolutions (``C -> C/2 -> C/4``, LayerNorm and GELU between), 2x one
    (``C -> C/2``), 1x the map itself, 0.5x a 2x2 max-pool. Every level then
    goes through a 1x1 and a 3x3 convolution to ``out_channels``, each
    followed by the norm (LayerNorm by default). Extra levels up to ``num_outs`` subsample the last
    one (1x1 max-pool, stride 2), as Mask R-CNN's RPN expects. For a
    stride-16 ViT and the default factors the outputs have strides 4, 8,
    16, 32 and 64.

    Args:
        in_channels: Channels of the ViT map.
        out_channels: Channels of every output level.
        scale_factors: Rescaling per level, from {4, 2, 1, 0.5}, large first.
        num_outs: Output levels, ``len(scale_factors)`` plus extra levels.
    """

    def __init__(self,
                 in_channels: int,
                 out_channels: int = 256,
                 scale_factors: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 num_outs: int = 5,
                 norm: str = 'LN',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        if norm not in NORMS:
            raise ValueError(f'norm must be one of {NORMS}, got {norm!r}')
        if num_outs < len(scale_factors):
            raise ValueError(f'num_outs {num_outs} is less than the {len(scale_factors)} scale factors')
        self.scale_factors = tuple(float(s) for s in scale_factors)
        self.num_outs = num_outs
        C = in_channels
        stages = []
        for s in self.scale_factors:
            if s == 4:
                layers = [nn.ConvTranspose2d(C, C // 2, 2, 2), _norm(norm, C // 2), nn.GELU(),
                          nn.ConvTranspose2d(C // 2, C // 4, 2, 2)]
                dim = C // 4
            elif s == 2:
                layers, dim = [nn.ConvTranspose2d(C, C // 2, 2, 2)], C // 2
            elif s == 1:
                layers, dim = [], C
            elif s == 0.5:
                layers, dim = [nn.MaxPool2d(2, 2)], C
            else:
                raise ValueError(f'scale factor {s} is not one of 4, 2, 1, 0.5')
            layers += [_conv_norm(dim, out_channels, 1, norm), _conv_norm(out_channels, out_channels, 3, norm)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)

    def forward(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Backbone outputs (the last one is used) to ``num_outs`` maps, large first."""
        x = inputs[-1]  # [B, C, h, w]
        outs = [stage(x) for stage in self.stages]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], 1, stride=2))
        return tuple(outs)
