"""Channel LayerNorm of feature maps (ViTDet's simple feature pyramid and heads)."""
import torch
from torch import nn

from mmmim.registry import MODELS


@MODELS.register_module()
class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of ``[B, C, H, W]`` maps, at every position.

    mmdet heads take it as ``norm_cfg=dict(type='mmmim.LayerNorm2d')``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # [B, C, H, W]
