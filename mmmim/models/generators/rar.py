"""The RAR transformer (Yu et al., 2024): a decoder-only transformer over VQ tokens.

Training sees the image tokens in a permuted order (raster order with
probability ``1 - r``); a target-aware position embedding tells each
position which original position it has to predict next. Sampling is
raster-order with a KV cache and classifier-free guidance.

Parameter names follow the official ``rar_{b,l,xl,xxl}.bin`` (``cls_token``,
``embeddings.weight``, ``pos_embed``, ``target_aware_pos_embed``,
``timesteps_embeddings``, ``blocks.N.*``, ``adaln_before_head.*``,
``lm_head.*``), so those files load strictly.

Sequence layout (L = image_seq_len)::

    position   0          1             2 ... L+1
    token      cls_token  class token   image tokens (in the training order)
    output     -          logits of the 1st target ... logits of the L-th target, (unused)
"""
import math
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmmim.registry import MODELS
from ..layers import Mlp, eval_mode

# Official sizes: width, depth (16 heads, FFN 4x) and the README's sampling defaults
# (guidance scale, guidance-scale power, temperature).
ARCHS = {
    'b': dict(embed_dim=768, depth=24, num_heads=16),
    'l': dict(embed_dim=1024, depth=24, num_heads=16),
    'xl': dict(embed_dim=1280, depth=32, num_heads=16),
    'xxl': dict(embed_dim=1408, depth=40, num_heads=16),
}
SAMPLING = {
    'b': dict(guidance_scale=16.0, guidance_scale_pow=2.75, temperature=1.0),
    'l': dict(guidance_scale=15.5, guidance_scale_pow=2.5, temperature=1.02),
    'xl': dict(guidance_scale=6.9, guidance_scale_pow=1.5, temperature=1.02),
    'xxl': dict(guidance_scale=8.0, guidance_scale_pow=1.2, temperature=1.02),
}

KVCache = List[Dict[str, torch.Tensor]]  # one {'k', 'v'} per block, grown each step


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


def guidance_scale_at(step: int, num_steps: int, guidance_scale: float, power: float) -> float:
    """The cosine guidance schedule: ``(gs - 1) * (1 - cos(pi * (step / n)^power)) / 2 + 1``."""
    return (guidance_scale - 1) * (1 - math.cos(math.pi * (step / num_steps)**power)) / 2 + 1


class CausalSelfAttention(nn.Module):
    """Causal multi-head attention with QK LayerNorm over the head dim, through SDPA.

    With a ``cache`` (this block's dict) the new keys / values are appended
    to the cached ones and the queries (the newest positions) attend to all.
    """

    def __init__(self, dim: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        assert dim % num_heads == 0, f'dim {dim} is not divisible by num_heads {num_heads}'
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=True)
        self.q_norm = nn.LayerNorm(self.head_dim, eps=1e-6)
        self.k_norm = nn.LayerNorm(self.head_dim, eps=1e-6)
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, cache: Optional[Dict[str, torch.Tensor]] = None):
        B, N, C = x.shape
        qkv = self.qkv(x).view(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # [B, heads, N, head_dim]
        q, k = self.q_norm(q), self.k_norm(k)
        if cache is not None:
            if cache:
                k = torch.cat([cache['k'], k], dim=2)
                v = torch.cat([cache['v'], v], dim=2)
            cache['k'], cache['v'] = k, v
        S = k.shape[2]  # keys: the cached positions, then these N
        mask = None
        if N > 1 and N != S:  # queries are the last N of S positions
            mask = torch.ones(N, S, dtype=torch.bool, device=x.device).tril(S - N)
        x = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=N > 1 and N == S,
            dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))


class AdaLNBlock(nn.Module):
    """Pre-norm block with AdaLN-Zero: ``adaLN_modulation(c)`` gives shift / scale / gate for
    attention, then for the MLP; the modulation starts at zero (each block starts as identity)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop: float = 0.0,
                 attn_drop: float = 0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = CausalSelfAttention(dim, num_heads, attn_drop, drop)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor,
                cache: Optional[Dict[str, torch.Tensor]] = None) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c).chunk(6, dim=-1)
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), cache)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class AdaLNHead(nn.Module):
    """``norm_final`` (no affine) modulated by ``adaLN_modulation(c)`` -> scale, shift."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        scale, shift = self.adaLN_modulation(c).chunk(2, dim=-1)
        return modulate(self.norm_final(x), shift, scale)


@MODELS.register_module()
class RARTransformer(BaseModule):
    """The RAR generator.

    Token ids of one embedding table: ``[0, K)`` image codes, ``K`` the mask
    id (unused by RAR), ``K+1 ... K+C`` the classes, ``K+C+1`` the null
    class of classifier-free guidance.

    Args:
        arch: ``'b'``, ``'l'``, ``'xl'``, ``'xxl'`` or a dict of
            ``embed_dim``, ``depth``, ``num_heads``.
        mlp_ratio: FFN width / embed_dim (4).
        codebook_size: K, the tokenizer's codebook size (1024).
        num_classes: C (1000).
        image_seq_len: Tokens per image (256 = 16 x 16).
        drop: Dropout after the attention projection and in the MLP (0.1).
        attn_drop: Attention dropout (0.1).
        with_cp: Gradient checkpointing of the blocks (the official use_checkpoint).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads an official
            ``rar_*.bin`` or an mmmim RAR checkpoint, strictly.
    """

    def __init__(self,
                 arch='b',
                 mlp_ratio: float = 4.0,
                 codebook_size: int = 1024,
                 num_classes: int = 1000,
                 image_seq_len: int = 256,
                 drop: float = 0.1,
                 attn_drop: float = 0.1,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise KeyError(f'RARTransformer arch {arch!r} is not one of {sorted(ARCHS)}')
            arch = ARCHS[arch]
        dim, depth, heads = arch['embed_dim'], arch['depth'], arch['num_heads']
        self.embed_dim, self.image_seq_len = dim, image_seq_len
        self.codebook_size, self.num_classes = codebook_size, num_classes
        self.null_class_id = codebook_size + 1 + num_classes
        self.with_cp = with_cp
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.embeddings = nn.Embedding(codebook_size + 1 + num_classes + 1, dim)
        # The official tables are longer than used: L + 1024 positions, L + 100 steps.
        self.pos_embed = nn.Parameter(torch.zeros(1, image_seq_len + 1024, dim))
        self.target_aware_pos_embed = nn.Parameter(torch.zeros(1, image_seq_len + 1024, dim))
        self.timesteps_embeddings = nn.Parameter(torch.zeros(1, image_seq_len + 100, dim))
        self.blocks = nn.ModuleList(
            AdaLNBlock(dim, heads, mlp_ratio, drop, attn_drop) for _ in range(depth))
        self.adaln_before_head = AdaLNHead(dim)
        self.lm_head = nn.Linear(dim, codebook_size)
        self._init()

    def _init(self) -> None:
        """The official initialisation: trunc-normal(0.02) weights and tables, zero biases,
        unit LayerNorms, zero cls_token and zero AdaLN modulations."""
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if getattr(m, 'bias', None) is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm) and m.weight is not None:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for p in (self.pos_embed, self.target_aware_pos_embed, self.timesteps_embeddings):
            nn.init.trunc_normal_(p, std=0.02)
        for mod in [blk.adaLN_modulation for blk in self.blocks] + [
                self.adaln_before_head.adaLN_modulation]:
            nn.init.zeros_(mod[-1].weight)
            nn.init.zeros_(mod[-1].bias)

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmmim.checkpoint import load_rar_generator
            load_rar_generator(self, cfg['checkpoint'])
            self._is_init = True
        else:
            super().init_weights()

    # -- conditions and orders ----------------------------------------------------------
    def condition_ids(self, labels: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        """Class labels ``[B]`` in ``[0, C)`` to token ids, each replaced by the null class
        with probability ``drop_prob``."""
        if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f'class labels must lie in [0, {self.num_classes}), got '
                             f'{labels.min().item()} .. {labels.max().item()}')
        ids = labels.long() + self.codebook_size + 1
        if drop_prob > 0:
            drop = torch.rand(labels.shape, device=labels.device) < drop_prob
            ids = ids.masked_fill(drop, self.null_class_id)
        return ids

    def sample_orders(self, batch_size: int, random_ratio: float,
                      device=None) -> torch.Tensor:
        """Orders ``[B, L]``: per sample, a ``torch.randperm`` with probability ``random_ratio``,
        else raster order."""
        orders = torch.arange(self.image_seq_len, device=device).repeat(batch_size, 1)
        for i in torch.nonzero(torch.rand(batch_size) < random_ratio).flatten().tolist():
            orders[i] = torch.randperm(self.image_seq_len, device=device)
        return orders

    # -- the forward pass ------------------------------------------------------------------
    def _inputs(self, ids: torch.Tensor, cond: torch.Tensor,
                orders: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Token inputs ``[B, 2 + n, D]`` and per-position conditions ``[B, 2 + n, D]``.

        ``ids`` ``[B, n]`` are already in the order ``orders`` ``[B, L]`` (n <= L);
        input position ``1 + i`` (the class token for i = 0, else the i-th
        image token) carries the target-aware embedding of the original
        position of the i-th target, ``orders[:, i]``; the last position of
        a full sequence carries none.
        """
        B, n = ids.shape
        L = self.image_seq_len
        emb = self.embeddings(torch.cat([cond[:, None], ids], dim=1))  # [B, 1 + n, D]
        gather = orders[:, :, None].expand(-1, -1, self.embed_dim)  # [B, L, D]
        pos = self.pos_embed[:, 2:2 + L].expand(B, -1, -1).gather(1, gather)  # [B, L, D]
        target = self.target_aware_pos_embed[:, 2:2 + L].expand(B, -1, -1).gather(1, gather)
        x = torch.cat([self.cls_token.expand(B, -1, -1), emb], dim=1)  # [B, 2 + n, D]
        x = x + torch.cat([self.pos_embed[:, :2].expand(B, -1, -1), pos[:, :n]], dim=1)
        zero = x.new_zeros(B, 1, self.embed_dim)
        x = x + torch.cat([zero, target, zero], dim=1)[:, :2 + n]
        c = emb[:, :1] + self.timesteps_embeddings[:, :2 + n]  # [B, 2 + n, D]
        return x, c

    def _run(self, x: torch.Tensor, c: torch.Tensor,
             cache: Optional[KVCache] = None) -> torch.Tensor:
        for i, blk in enumerate(self.blocks):
            if cache is not None:
                x = blk(x, c, cache[i])
            elif self.with_cp and self.training:
                x = checkpoint(blk, x, c, use_reentrant=False)
            else:
                x = blk(x, c)
        return self.lm_head(self.adaln_before_head(x, c))

    def forward(self, ids: torch.Tensor, cond: torch.Tensor,
                orders: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[B, L + 1, K]`` of image tokens ``ids`` ``[B, L]`` (raster order) under
        ``orders`` ``[B, L]`` (raster if None), and the targets ``[B, L]`` in that order.

        ``logits[:, i]`` predicts ``targets[:, i]``; the last position predicts nothing.
        """
        B, L = ids.shape
        if L != self.image_seq_len:
            raise ValueError(f'RARTransformer was built for {self.image_seq_len} tokens per '
                             f'image, got {L}')
        if orders is None:
            orders = torch.arange(L, device=ids.device).repeat(B, 1)
        targets = ids.gather(1, orders)
        x, c = self._inputs(targets, cond, orders)
        return self._run(x, c)[:, 1:], targets

    # -- sampling ---------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self,
                 labels: torch.Tensor,
                 guidance_scale: float = 16.0,
                 guidance_scale_pow: float = 2.75,
                 temperature: float = 1.0,
                 use_cache: bool = True,
                 generator: Optional[torch.Generator] = None,
                 progress=None) -> torch.Tensor:
        """Raster-order sampling of ``[B, L]`` image tokens for class ``labels`` ``[B]``.

        With ``guidance_scale != 0`` each step runs the batch twice, with the
        classes and with the null class, and mixes the logits with the cosine
        schedule :func:`guidance_scale_at`; tokens are drawn from
        ``softmax(logits / temperature)`` (no top-k). With ``use_cache`` the
        first step runs over [cls, class] and each later one over the newest
        token only; without it every step reruns the whole prefix.
        ``progress`` (optional) gets ``update(1)`` after each step.
        """
        B, L = labels.shape[0], self.image_seq_len
        device = labels.device
        cond = self.condition_ids(labels)
        cfg = guidance_scale != 0
        if cfg:
            cond = torch.cat([cond, torch.full_like(cond, self.null_class_id)])
        orders = torch.arange(L, device=device).repeat(cond.shape[0], 1)
        ids = torch.zeros(cond.shape[0], 0, dtype=torch.long, device=device)
        cache: Optional[KVCache] = [{} for _ in self.blocks] if use_cache else None
        with eval_mode(self):
            for step in range(L):
                x, c = self._inputs(ids, cond, orders)  # [B', 2 + step, D]
                if use_cache:  # the positions the cache has not seen
                    start = 0 if step == 0 else step + 1
                    x, c = x[:, start:], c[:, start:]
                logits = self._run(x, c, cache)[:, -1].float()  # [B', K]
                if cfg:
                    cond_logits, uncond_logits = logits.chunk(2)
                    scale = guidance_scale_at(step, L, guidance_scale, guidance_scale_pow)
                    logits = uncond_logits + (cond_logits - uncond_logits) * scale
                probs = F.softmax(logits / temperature, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator)  # [B, 1]
                ids = torch.cat([ids, token.repeat(2, 1) if cfg else token], dim=1)
                if progress is not None:
                    progress.update(1)
        return ids[:B]
