"""The lightweight decoder of MAE (He et al., 2022)."""
from typing import Sequence, Union

import torch
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS
from ..backbones.vit import _pair, init_mae_weights
from ..layers import Block, sincos_2d


@MODELS.register_module()
class MAEDecoder(BaseModule):
    """Fills masked positions with a shared mask token and predicts pixels.

    Parameter names follow the official code (``decoder_embed``,
    ``mask_token``, ``decoder_pos_embed``, ``decoder_blocks``,
    ``decoder_norm``, ``decoder_pred``).

    Args:
        img_size: Input size of the encoder (sets the patch grid).
        patch_size: Patch side in pixels.
        in_channels: Image channels predicted per pixel.
        embed_dim: Width of the encoder's latent.
        decoder_embed_dim: Decoder width (512 in the paper).
        decoder_depth: Decoder blocks (8).
        decoder_num_heads: Decoder heads (16).
        mlp_ratio: MLP expansion of the decoder blocks.
        norm_eps: LayerNorm epsilon.
    """

    def __init__(self,
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 embed_dim: int = 768,
                 decoder_embed_dim: int = 512,
                 decoder_depth: int = 8,
                 decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.0,
                 norm_eps: float = 1e-6,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        img_size = _pair(img_size)
        self.grid_size = (img_size[0] // patch_size, img_size[1] // patch_size)
        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            sincos_2d(self.grid_size, decoder_embed_dim, num_extra_tokens=1), requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            Block(decoder_embed_dim, decoder_num_heads, mlp_ratio, qkv_bias=True, norm_eps=norm_eps)
            for _ in range(decoder_depth)
        ])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim, eps=norm_eps)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size**2 * in_channels)
        init_mae_weights(self)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, latent: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, 1 + L_keep, C]`` and ``ids_restore`` ``[B, L]`` to ``[B, L, p*p*3]``."""
        x = self.decoder_embed(latent)  # [B, 1 + L_keep, D]
        B, n_vis, D = x.shape
        L = ids_restore.shape[1]
        mask_tokens = self.mask_token.expand(B, L + 1 - n_vis, -1)
        x_ = torch.cat([x[:, 1:], mask_tokens], dim=1)  # [B, L, D], shuffled order
        x_ = torch.gather(x_, 1, ids_restore.unsqueeze(-1).expand(-1, -1, D))  # unshuffle
        x = torch.cat([x[:, :1], x_], dim=1) + self.decoder_pos_embed  # [B, 1 + L, D]
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_pred(self.decoder_norm(x))  # [B, 1 + L, p*p*3]
        return x[:, 1:]
