"""Llama-style transformer pieces: RMSNorm, SwiGLU, rotary positions, and a pre-norm block.

Parameter names follow HF ``transformers``' Llama (``self_attn.{q,k,v,o}_proj``,
``mlp.{gate,up,down}_proj``, ``input_layernorm``, ``post_attention_layernorm``),
and the rotary embedding is its half-split ("rotate half") form, so a block
loads a ``LlamaDecoderLayer``'s weights as they are.

Attention takes any boolean mask (``True`` = may attend) or a FlexAttention
``BlockMask``, and an optional per-block KV cache: a dict that holds the
keys / values of the positions seen so far (``{'k', 'v'}``, each
``[B, heads, S, head_dim]``).
"""
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F
from torch import nn

KVCache = Dict[str, torch.Tensor]


class RMSNorm(nn.Module):
    """``weight * x / sqrt(mean(x^2) + eps)``, computed in fp32 (Llama's norm)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float()
        y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


class SwiGLU(nn.Module):
    """Llama's feed-forward network: ``down(silu(gate(x)) * up(x))``, no biases."""

    def __init__(self, dim: int, hidden_dim: int):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.up_proj = nn.Linear(dim, hidden_dim, bias=False)
        self.down_proj = nn.Linear(hidden_dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def swiglu_hidden_dim(dim: int, multiple_of: int = 256, ffn_dim_multiplier: float = 1.0) -> int:
    """Llama's FFN width: ``2/3 * 4 * dim`` (times the multiplier), rounded up to
    ``multiple_of``."""
    hidden = int(ffn_dim_multiplier * int(2 * 4 * dim / 3))
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) with frequencies ``base^(-2i / head_dim)``."""

    def __init__(self, head_dim: int, base: float = 10000.0):
        super().__init__()
        inv_freq = 1.0 / base**(torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer('inv_freq', inv_freq, persistent=False)

    def forward(self, positions: torch.Tensor):
        """``positions`` ``[B, N]`` -> ``cos``, ``sin`` ``[B, 1, N, head_dim]`` (fp32)."""
        freqs = positions.float()[..., None] * self.inv_freq  # [B, N, head_dim / 2]
        emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # [B, 1, N, head_dim]
        return emb.cos(), emb.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` ``[B, heads, N, head_dim]`` by the angles of ``cos`` / ``sin``."""
    x1, x2 = x.float().chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x.float() * cos + rotated * sin).to(x.dtype)


_COMPILED_FLEX = []


def _flex_attention(cuda: bool):
    """FlexAttention, compiled on CUDA (its fused kernel); eager elsewhere (a reference path)."""
    from torch.nn.attention.flex_attention import flex_attention
    if not cuda:
        return flex_attention
    if not _COMPILED_FLEX:
        _COMPILED_FLEX.append(torch.compile(flex_attention, dynamic=False))
    return _COMPILED_FLEX[0]


class LlamaAttention(nn.Module):
    """Multi-head attention with RoPE, no biases, through SDPA or FlexAttention."""

    def __init__(self, dim: int, num_heads: int, rope_base: float = 10000.0):
        super().__init__()
        assert dim % num_heads == 0, f'dim {dim} is not divisible by num_heads {num_heads}'
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.o_proj = nn.Linear(dim, dim, bias=False)
        self.rotary = RotaryEmbedding(self.head_dim, rope_base)

    def forward(self, x: torch.Tensor, positions: torch.Tensor,
                mask: Union[torch.Tensor, 'BlockMask', None],  # noqa: F821
                cache: Optional[KVCache] = None, write_cache: bool = True) -> torch.Tensor:
        """``x`` ``[B, N, C]`` at RoPE ``positions`` ``[B, N]``.

        ``mask``: boolean ``[B, 1, N, S]`` (``S`` = cached + ``N`` keys) or a
        ``BlockMask``. With a ``cache`` the new keys / values follow the cached
        ones; ``write_cache=False`` reads the cache without extending it (the
        denoising steps of an image, which are rerun until the image is done).
        """
        B, N, C = x.shape

        def heads(t):  # [B, N, C] -> [B, heads, N, head_dim]
            return t.view(B, N, self.num_heads, self.head_dim).transpose(1, 2)

        cos, sin = self.rotary(positions)
        q = apply_rotary(heads(self.q_proj(x)), cos, sin)
        k = apply_rotary(heads(self.k_proj(x)), cos, sin)
        v = heads(self.v_proj(x))
        if cache is not None:
            if cache:
                k = torch.cat([cache['k'], k], dim=2)
                v = torch.cat([cache['v'], v], dim=2)
            if write_cache:
                cache['k'], cache['v'] = k, v
        if mask is None or isinstance(mask, torch.Tensor):
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # [B, heads, N, head_dim]
        else:
            y = _flex_attention(q.is_cuda)(q, k, v, block_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(B, N, C))


class LlamaBlock(nn.Module):
    """Pre-norm block: ``x + attn(RMSNorm(x))``, then ``x + SwiGLU(RMSNorm(x))``."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, norm_eps: float = 1e-5,
                 rope_base: float = 10000.0):
        super().__init__()
        self.input_layernorm = RMSNorm(dim, norm_eps)
        self.self_attn = LlamaAttention(dim, num_heads, rope_base)
        self.post_attention_layernorm = RMSNorm(dim, norm_eps)
        self.mlp = SwiGLU(dim, hidden_dim)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask,
                cache: Optional[KVCache] = None, write_cache: bool = True) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), positions, mask, cache, write_cache)
        return x + self.mlp(self.post_attention_layernorm(x))
