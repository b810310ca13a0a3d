"""Multi-head self-attention and the pre-norm transformer block of ViT."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .decomposed_rel_pos import decomposed_rel_pos_bias
from .drop_path import DropPath
from .rel_pos_bias import bias_for_grid, num_relative_distances
from .window import window_partition, window_unpartition


class Attention(nn.Module):
    """Self-attention through ``F.scaled_dot_product_attention``.

    Args:
        dim: Token width.
        num_heads: Attention heads.
        qkv_bias: Bias on the fused qkv projection (ViT / MAE).
        qv_bias: BEiT's variant: learnable ``q_bias`` and ``v_bias``, no key bias.
        window: Patch grid of a per-layer relative position bias table, if any.
        attn_drop: Dropout on attention weights.
        proj_drop: Dropout after the output projection.
        rel_pos_size: Patch grid ``(h, w)`` of ViTDet's decomposed relative
            positions ``rel_pos_h`` ``[2h-1, head_dim]`` / ``rel_pos_w``
            ``[2w-1, head_dim]`` (zero-initialised), if any.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 qv_bias: bool = False,
                 window: Optional[Tuple[int, int]] = None,
                 attn_drop: float = 0.0,
                 proj_drop: float = 0.0,
                 rel_pos_size: Optional[Tuple[int, int]] = None):
        super().__init__()
        assert dim % num_heads == 0, f'dim {dim} is not divisible by num_heads {num_heads}'
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias and not qv_bias)
        if qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.window = None if window is None else tuple(window)
        if window is not None:
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros(num_relative_distances(window), num_heads))
            self._index = {}
        else:
            self.relative_position_bias_table = None
        self.rel_pos_size = None if rel_pos_size is None else tuple(rel_pos_size)
        if rel_pos_size is not None:
            head_dim = dim // num_heads
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * rel_pos_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * rel_pos_size[1] - 1, head_dim))
        else:
            self.rel_pos_h = self.rel_pos_w = None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, rel_pos_bias: Optional[torch.Tensor] = None,
                grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        """``x``: ``[B, N, C]``; ``rel_pos_bias``: shared ``[heads, N, N]`` or None;
        ``grid``: the patch grid of ``x`` (needed with a per-layer table or
        decomposed relative positions, whose tables are resized to it).

        Tokens without a class token (``N = h*w``) use the bias without its
        class-token row and column. Decomposed relative positions need
        ``N = h*w``."""
        B, N, C = x.shape
        bias = self.qkv.bias
        if self.q_bias is not None:
            bias = torch.cat([self.q_bias, torch.zeros_like(self.v_bias), self.v_bias])
        qkv = F.linear(x, self.qkv.weight, bias)  # [B, N, 3C]
        q, k, v = qkv.view(B, N, 3, self.num_heads, C // self.num_heads).permute(2, 0, 3, 1, 4)
        if self.relative_position_bias_table is not None:
            own = bias_for_grid(self.relative_position_bias_table, self.window,
                                grid or self.window, self._index)
            rel_pos_bias = own if rel_pos_bias is None else rel_pos_bias + own
        if rel_pos_bias is not None and rel_pos_bias.shape[-1] == N + 1:
            rel_pos_bias = rel_pos_bias[:, 1:, 1:]  # [heads, N, N], no class token
        mask = None if rel_pos_bias is None else rel_pos_bias.unsqueeze(0)  # [1, heads, N, N]
        if self.rel_pos_h is not None:
            decomposed = decomposed_rel_pos_bias(q, self.rel_pos_h, self.rel_pos_w,
                                                 grid or self.rel_pos_size)  # [B, heads, N, N]
            mask = decomposed if mask is None else mask + decomposed
        mask = None if mask is None else mask.to(q.dtype)
        x = F.scaled_dot_product_attention(  # [B, heads, N, C/heads]
            q, k, v, attn_mask=mask, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class QuickGELU(nn.Module):
    """CLIP's sigmoid approximation of GELU, ``x * sigmoid(1.702 x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


ACTIVATIONS = {'gelu': nn.GELU, 'quick_gelu': QuickGELU}


class Mlp(nn.Module):
    """Two-layer feed-forward network; ``act`` is ``'gelu'`` or ``'quick_gelu'`` (CLIP)."""

    def __init__(self, dim: int, hidden_dim: int, drop: float = 0.0, act: str = 'gelu'):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = ACTIVATIONS[act]()
        self.fc2 = nn.Linear(hidden_dim, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``.

    With ``layer_scale_init_value > 0`` the branches are scaled by learnable
    per-channel ``gamma_1`` / ``gamma_2`` (CaiT / BEiT layer scale). With
    ``window_size > 0`` attention runs within non-overlapping windows of
    that many patches a side (ViTDet; the grid is zero-padded to a multiple
    of the window, and a per-layer table is built for the window).
    ``rel_pos_size`` builds ViTDet's decomposed relative positions for that
    patch grid (pass the window for a windowed block). ``act`` is the MLP's
    activation (:data:`ACTIVATIONS`).
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 4.0,
                 qkv_bias: bool = True,
                 qv_bias: bool = False,
                 window: Optional[Tuple[int, int]] = None,
                 layer_scale_init_value: float = 0.0,
                 drop: float = 0.0,
                 attn_drop: float = 0.0,
                 drop_path: float = 0.0,
                 norm_eps: float = 1e-6,
                 window_size: int = 0,
                 rel_pos_size: Optional[Tuple[int, int]] = None,
                 act: str = 'gelu'):
        super().__init__()
        self.window_size = window_size
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim, num_heads, qkv_bias, qv_bias, window, attn_drop, drop,
                              rel_pos_size)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop, act)
        if layer_scale_init_value > 0:
            self.gamma_1 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
            self.gamma_2 = nn.Parameter(torch.full((dim, ), float(layer_scale_init_value)))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor, rel_pos_bias: Optional[torch.Tensor] = None,
                grid: Optional[Tuple[int, int]] = None) -> torch.Tensor:
        if self.window_size:
            ws = self.window_size
            y, padded = window_partition(self.norm1(x), grid, ws)  # [B*windows, ws*ws, C]
            y = window_unpartition(self.attn(y, None, (ws, ws)), grid, padded, ws)  # [B, h*w, C]
        else:
            y = self.attn(self.norm1(x), rel_pos_bias, grid)
        x = x + self.drop_path(y if self.gamma_1 is None else self.gamma_1 * y)
        y = self.mlp(self.norm2(x))
        return x + self.drop_path(y if self.gamma_2 is None else self.gamma_2 * y)


class CrossAttention(nn.Module):
    """Attention of queries to separate keys / values (CAE's regressor).

    ``q``, ``k``, ``v`` are separate bias-free projections plus learnable
    ``q_bias`` / ``v_bias`` (no key bias), as in the official CAE.
    """

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        assert dim % num_heads == 0, f'dim {dim} is not divisible by num_heads {num_heads}'
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``q``: ``[B, Nq, C]``; ``k``, ``v``: ``[B, Nk, C]`` -> ``[B, Nq, C]``."""
        B, Nq, C = q.shape
        h = self.num_heads

        def heads(x):  # [B, N, C] -> [B, heads, N, C/heads]
            return x.view(B, -1, h, C // h).transpose(1, 2)

        q = heads(F.linear(q, self.q.weight, self.q_bias))
        k = heads(self.k(k))
        v = heads(F.linear(v, self.v.weight, self.v_bias))
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, Nq, C)))
