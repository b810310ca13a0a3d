"""The patch-aggregation CLS neck of BEiT v2 (Peng et al., 2022)."""
import math
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS
from ..layers import Block


@MODELS.register_module()
class BEiTV2Neck(BaseModule):
    """Extra blocks (``cls_pt_layers``) over the last layer's class token and
    an early layer's patch tokens, so that the class token must aggregate
    the image for the second MIM loss.

    The blocks are built like the backbone's (q / v biases, layer scale) and
    keep PyTorch's default initialisation, rescaled like the official code.

    Args:
        num_layers: Extra blocks (2).
        early_layers: Backbone layer whose patch tokens are taken (9 for B, 21 for L).
        embed_dim: Token width.
        num_heads: Attention heads.
        mlp_ratio: MLP expansion.
        layer_scale_init_value: Initial layer scale.
        drop_path_rate: The backbone's stochastic depth; the blocks continue
            its linear schedule from ``early_layers``.
        depth: Backbone depth (for that schedule).
        norm_eps: LayerNorm epsilon.
    """

    def __init__(self,
                 num_layers: int = 2,
                 early_layers: int = 9,
                 embed_dim: int = 768,
                 num_heads: int = 12,
                 mlp_ratio: float = 4.0,
                 layer_scale_init_value: float = 0.1,
                 drop_path_rate: float = 0.0,
                 depth: int = 12,
                 norm_eps: float = 1e-6,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.early_layers = early_layers
        dpr = torch.linspace(0, drop_path_rate, max(depth, early_layers + num_layers)).tolist()
        self.cls_pt_layers = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=False, qv_bias=True,
                  layer_scale_init_value=layer_scale_init_value, drop_path=dpr[early_layers + i],
                  norm_eps=norm_eps) for i in range(num_layers)
        ])
        with torch.no_grad():
            for i, blk in enumerate(self.cls_pt_layers):
                scale = math.sqrt(2.0 * (early_layers + i + 1))
                blk.attn.proj.weight.div_(scale)
                blk.mlp.fc2.weight.div_(scale)

    def forward(self, last: torch.Tensor, early: torch.Tensor,
                rel_pos_bias: Optional[torch.Tensor], grid: Tuple[int, int]) -> torch.Tensor:
        """``[B, 1 + L, C]`` tokens of the last and the early layer (both before the final
        norm) to ``[B, 1 + L, C]``: the last class token followed by the early patch tokens,
        through the extra blocks."""
        x = torch.cat([last[:, :1], early[:, 1:]], dim=1)
        for blk in self.cls_pt_layers:
            x = blk(x, rel_pos_bias, grid)
        return x
