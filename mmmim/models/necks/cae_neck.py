"""The latent contextual regressor and decoder of CAE (Chen et al., 2023)."""
from typing import Optional, Tuple

import torch
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS
from ..backbones.vit import init_mae_weights
from ..layers import Block, CrossAttention, DropPath, Mlp, trunc_normal_one_std


class RegressorBlock(nn.Module):
    """Mask queries attend to the visible latents and to themselves.

    ``x = q + gamma_1 * attn(norm1_q(q + pos_q), norm1_k(kv + pos_kv), norm1_v(kv))``,
    then ``x = norm2(x)`` and ``x + gamma_2 * mlp(x)``; ``kv`` = [visible; queries].
    Names follow the official block (``*_cross``).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 layer_scale_init_value: float = 0.1, drop_path: float = 0.0,
                 norm_eps: float = 1e-6):
        super().__init__()
        self.norm1_q = nn.LayerNorm(dim, eps=norm_eps)
        self.norm1_k = nn.LayerNorm(dim, eps=norm_eps)
        self.norm1_v = nn.LayerNorm(dim, eps=norm_eps)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2_cross = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp_cross = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)
        self.gamma_1_cross = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
        self.gamma_2_cross = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))

    def forward(self, x_q: torch.Tensor, x_kv: torch.Tensor, pos_q: torch.Tensor,
                pos_kv: torch.Tensor) -> torch.Tensor:
        attn = self.cross_attn(self.norm1_q(x_q + pos_q), self.norm1_k(x_kv + pos_kv), self.norm1_v(x_kv))
        x = x_q + self.drop_path(self.gamma_1_cross * attn)
        x = self.norm2_cross(x)
        return x + self.drop_path(self.gamma_2_cross * self.mlp_cross(x))


@MODELS.register_module()
class CAENeck(BaseModule):
    """Regressor (cross-attention from mask queries to visible latents) and decoder.

    The regressor predicts the latents of the masked patches from the
    visible ones (aligned to the target encoder's latents); the decoder
    (self-attention over the masked tokens only) turns them into features for
    the token head. All linear layers start xavier-uniform, the mask token
    normal(0.02) truncated at one std, as the official code.

    Args:
        embed_dim: Width of latents, regressor and decoder (768).
        num_heads: Attention heads.
        regressor_depth: Regressor blocks (4).
        decoder_depth: Decoder blocks (4).
        mlp_ratio: MLP expansion.
        layer_scale_init_value: Initial layer scale of both stacks.
        drop_path_rate: Stochastic depth, increased linearly over each stack.
        norm_eps: LayerNorm epsilon.
    """

    def __init__(self,
                 embed_dim: int = 768,
                 num_heads: int = 12,
                 regressor_depth: int = 4,
                 decoder_depth: int = 4,
                 mlp_ratio: float = 4.0,
                 layer_scale_init_value: float = 0.1,
                 drop_path_rate: float = 0.0,
                 norm_eps: float = 1e-6,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        dpr = torch.linspace(0, drop_path_rate, regressor_depth).tolist()
        self.regressor_blocks = nn.ModuleList([
            RegressorBlock(embed_dim, num_heads, mlp_ratio, layer_scale_init_value, dpr[i], norm_eps)
            for i in range(regressor_depth)
        ])
        self.regressor_norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        dpr = torch.linspace(0, drop_path_rate, decoder_depth).tolist()
        self.decoder_blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=False, qv_bias=True,
                  layer_scale_init_value=layer_scale_init_value, drop_path=dpr[i], norm_eps=norm_eps)
            for i in range(decoder_depth)
        ])
        self.decoder_norm = nn.LayerNorm(embed_dim, eps=norm_eps)
        init_mae_weights(self)
        trunc_normal_one_std(self.mask_token)

    def forward(self, x_visible: torch.Tensor, pos_visible: torch.Tensor,
                pos_masked: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Predict the masked patches.

        Args:
            x_visible: Encoder latents of the visible patches ``[B, Nv, C]`` (no class token).
            pos_visible: Their position embeddings ``[B, Nv, C]``.
            pos_masked: Position embeddings of the masked patches ``[B, Nm, C]``.

        Returns:
            Predicted latents ``[B, Nm, C]`` (for the alignment loss) and
            decoder features ``[B, Nm, C]`` (for the token head).
        """
        B, Nm, C = pos_masked.shape
        x = self.mask_token.expand(B, Nm, C).to(x_visible.dtype)
        pos_kv = torch.cat([pos_visible, pos_masked], dim=1)
        for blk in self.regressor_blocks:
            x = blk(x, torch.cat([x_visible, x], dim=1), pos_masked, pos_kv)
        latent_pred = self.regressor_norm(x)
        x = latent_pred + pos_masked
        for blk in self.decoder_blocks:
            x = blk(x)
        return latent_pred, self.decoder_norm(x)
