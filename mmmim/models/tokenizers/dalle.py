"""The DALL-E dVAE encoder (Ramesh et al., 2021), BEiT v1's and CAE's tokenizer.

Parameter names follow the official pickled module (``blocks.input.w``,
``blocks.group_1.block_1.res_path.conv_1.w``, ...), so the tensors that
:func:`mmmim.checkpoint.read_dalle_encoder` reads from ``encoder.pkl`` load
with ``strict=True``.
"""
import math
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS


class DALLEConv2d(nn.Module):
    """Same-padded convolution with the official ``w`` / ``b`` parameter names."""

    def __init__(self, n_in: int, n_out: int, kw: int):
        super().__init__()
        self.w = nn.Parameter(torch.randn(n_out, n_in, kw, kw) / math.sqrt(n_in * kw * kw))
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.w, self.b, padding=(self.w.shape[-1] - 1) // 2)


class DALLEEncoderBlock(nn.Module):
    """``id_path(x) + res_path(x) / n_layers**2``; res_path: 3x3, 3x3, 3x3, 1x1 convs, ReLU before each."""

    def __init__(self, n_in: int, n_out: int, n_layers: int):
        super().__init__()
        n_hid = n_out // 4
        self.post_gain = 1 / n_layers**2
        self.id_path = DALLEConv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        self.res_path = nn.Sequential()
        for i, (a, b, k) in enumerate([(n_in, n_hid, 3), (n_hid, n_hid, 3), (n_hid, n_hid, 3),
                                       (n_hid, n_out, 1)], start=1):
            self.res_path.add_module(f'relu_{i}', nn.ReLU())
            self.res_path.add_module(f'conv_{i}', DALLEConv2d(a, b, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.id_path(x) + self.post_gain * self.res_path(x)


@MODELS.register_module()
class DALLEEncoder(BaseModule):
    """The dVAE encoder: an image to one of ``vocab_size`` codes per 8x8 pixels.

    Four groups of residual blocks (widths ``n_hid`` x 1, 2, 4, 8), max-pool
    after the first three, then a 1x1 convolution to code logits. The input
    is mapped to DALL-E's range (``TwoViewDataPreprocessor`` does it).
    The encoder is a frozen target: always in eval mode, no gradients.

    Args:
        n_hid: Width of the first group (256 in the official model).
        group_count: Groups (4).
        n_blk_per_group: Residual blocks per group (2).
        vocab_size: Codes (8192).
        init_cfg: ``dict(type='Pretrained', checkpoint='encoder.pkl')`` loads
            the official pickled encoder safely (or an mmmim / state-dict file).
    """

    def __init__(self,
                 n_hid: int = 256,
                 group_count: int = 4,
                 n_blk_per_group: int = 2,
                 vocab_size: int = 8192,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.vocab_size = vocab_size
        n_layers = group_count * n_blk_per_group
        self.blocks = nn.Sequential()
        self.blocks.add_module('input', DALLEConv2d(3, n_hid, 7))
        width = n_hid
        for g in range(group_count):
            group = nn.Sequential()
            out = n_hid * 2**g
            for i in range(n_blk_per_group):
                group.add_module(f'block_{i + 1}', DALLEEncoderBlock(width, out, n_layers))
                width = out
            if g < group_count - 1:
                group.add_module('pool', nn.MaxPool2d(kernel_size=2))
            self.blocks.add_module(f'group_{g + 1}', group)
        self.blocks.add_module('output', nn.Sequential())
        self.blocks.output.add_module('relu', nn.ReLU())
        self.blocks.output.add_module('conv', DALLEConv2d(width, vocab_size, 1))
        self.requires_grad_(False)

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmmim.checkpoint import load_tokenizer
            load_tokenizer(self, cfg['checkpoint'])
            self._is_init = True
        else:
            super().init_weights()

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Code logits ``[B, vocab, H/8, W/8]`` of mapped images ``[B, 3, H, W]``.

        Always fp32, outside any autocast region, as the official BEiT / CAE
        compute their targets.
        """
        with torch.autocast(x.device.type, enabled=False):
            return self.blocks(x.float())

    @torch.no_grad()
    def get_codebook_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Visual tokens ``[B, H/8 * W/8]`` (row-major, like the patch order)."""
        return self(x).argmax(dim=1).flatten(1)
