"""The Transfusion transformer (Zhou et al., 2024): one Llama-style decoder over text and images.

A sequence mixes text tokens and the patches of (noised) image latents; each
image is wrapped in BOI / EOI text tokens. Text tokens are embedded by a
table, patches (with an embedding of their diffusion timestep) by a linear
layer or U-Net down blocks. Attention is causal over the sequence and
bidirectional within each image (:func:`mixed_modal_mask`). The last hidden
states give next-token logits (``lm_head``) at text positions and the
predicted noise (a linear layer or U-Net up blocks) at patch positions.

Sampling (:meth:`TransfusionTransformer.generate`) follows the paper's
decoding: text token by token (KV cache); on BOI, ``n`` patches of pure
noise are appended and denoised in place by a diffusers scheduler (DDIM,
fewer steps than training), with classifier-free guidance against the same
image with no caption in front of it; the clean image enters the context,
EOI is appended and text continues.

Batch layout of :meth:`TransfusionTransformer.forward` (``L`` positions a row,
``N`` images in the batch, ``n`` patches an image, ``P`` values a patch)::

    input_ids  [B, L]    token ids; the image placeholder id at patch positions
    image_ids  [B, L]    -1 at text, the image's index in [0, N) at its patches,
                         images numbered in row-major order of the batch
    patches    [N, n, P] (noised) latent patches, left-to-right, top-to-bottom
    timesteps  [N]       diffusion timestep of each image
    doc_ids    [B, L]    (packed rows) the document of each position, -1 at padding
"""
import importlib.util
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmmim.registry import MODELS
from ..layers import LlamaBlock, RMSNorm, eval_mode, mixed_modal_block_mask, mixed_modal_mask
from ..layers.llama import swiglu_hidden_dim

# The paper's model sizes (Table 2): layers, width, attention heads.
ARCHS = {
    '0.16b': dict(embed_dim=768, depth=16, num_heads=12),
    '0.37b': dict(embed_dim=1024, depth=24, num_heads=16),
    '0.76b': dict(embed_dim=1536, depth=24, num_heads=24),
    '1.4b': dict(embed_dim=2048, depth=24, num_heads=16),
    '7b': dict(embed_dim=4096, depth=32, num_heads=32),
}


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[N, dim]`` of timesteps ``t`` ``[N]`` (cos half, then sin half)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def patchify(latents: torch.Tensor, p: int) -> torch.Tensor:
    """``[N, C, H, W]`` -> ``[N, (H/p)(W/p), p*p*C]``, patches left-to-right, top-to-bottom."""
    N, C, H, W = latents.shape
    if H % p or W % p:
        raise ValueError(f'latent size {H}x{W} is not a multiple of the patch size {p}')
    x = latents.reshape(N, C, H // p, p, W // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(N, (H // p) * (W // p), p * p * C)


def unpatchify(patches: torch.Tensor, p: int, channels: int) -> torch.Tensor:
    """Inverse of :func:`patchify` for a square grid: ``[N, n, p*p*C]`` -> ``[N, C, H, W]``."""
    N, n, _ = patches.shape
    side = int(round(n**0.5))
    if side * side != n:
        raise ValueError(f'{n} patches do not form a square grid')
    x = patches.reshape(N, side, side, p, p, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(N, channels, side * p, side * p)


def _init_normal(module: nn.Module) -> None:
    """N(0, 0.02) weights and zero biases of every linear and embedding layer (Llama's)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
            if getattr(m, 'bias', None) is not None:
                nn.init.zeros_(m.bias)


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of the timestep through ``Linear -> SiLU -> Linear`` to ``out_dim``."""

    def __init__(self, out_dim: int, hidden_dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(
            nn.Linear(freq_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, out_dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(timestep_embedding(t, self.freq_dim))  # [N, out_dim]


@MODELS.register_module()
class LinearPatchEmbed(nn.Module):
    """The paper's linear patchify: an embedding of the timestep is added to every patch vector
    before the linear layer into the transformer; a linear layer maps the last hidden states
    back to the patch (the predicted noise).

    ``encode``: patches ``[N, n, P]``, timesteps ``[N]`` -> tokens ``[N, n, D]`` and a state
    for ``decode`` (None here); ``decode``: hidden ``[N, n, D]``, state -> ``[N, n, P]``.
    """

    def __init__(self, patch_dim: int, embed_dim: int):
        super().__init__()
        self.time_embed = TimestepEmbedder(patch_dim, embed_dim)
        self.proj_in = nn.Linear(patch_dim, embed_dim)
        self.proj_out = nn.Linear(embed_dim, patch_dim)
        _init_normal(self)

    def encode(self, patches: torch.Tensor, timesteps: torch.Tensor):
        return self.proj_in(patches + self.time_embed(timesteps)[:, None]), None

    def decode(self, hidden: torch.Tensor, state=None) -> torch.Tensor:
        return self.proj_out(hidden)


@MODELS.register_module()
class UNetPatchEmbed(nn.Module):
    """The paper's U-Net patchify: U-Net down blocks map each image's latent to a grid of
    tokens, up blocks (with the U-Net's skip connections from the down blocks) map the
    transformer's outputs back to the predicted noise. The U-Net is diffusers' ``UNet2DModel``
    of ``DownBlock2D`` / ``UpBlock2D`` with the transformer where its middle block would be
    (its ResNet blocks take the timestep embedding added, GroupNorm without adaptive scale).

    ``block_out_channels`` has one entry per level; every level but the last halves the
    resolution, so a token covers ``p x p`` latent pixels, ``p = 2 ** (levels - 1)``, and a
    patch of the sequence is that ``p x p x in_channels`` region (``patch_dim``).

    Args:
        patch_dim: ``p * p * in_channels``.
        embed_dim: Width of the transformer.
        in_channels: Latent channels (8).
        block_out_channels: Channels of the U-Net levels. The default (two
            levels, 2x2 latent pixels a token) has 0.25B parameters: the paper's
            U-Net adds 0.27B to the 0.37B-7B models but gives no widths.
        layers_per_block: ResNet blocks a down level (an up level has one more).
        norm_num_groups: GroupNorm groups of the ResNet blocks.
    """

    def __init__(self, patch_dim: int, embed_dim: int, in_channels: int = 8,
                 block_out_channels: Tuple[int, ...] = (768, 1024),
                 layers_per_block: int = 2, norm_num_groups: int = 32):
        super().__init__()
        from diffusers import UNet2DModel
        levels = len(block_out_channels)
        self.p, self.in_channels = 2**(levels - 1), in_channels
        if patch_dim != self.p**2 * in_channels:
            raise ValueError(f'UNetPatchEmbed with {levels} levels makes a token of '
                             f'{self.p}x{self.p} latent pixels x {in_channels} channels = '
                             f'{self.p**2 * in_channels} values, but patch_dim is {patch_dim} '
                             f'(set the Transfusion patch_size to {self.p})')
        self.unet = UNet2DModel(
            in_channels=in_channels, out_channels=in_channels,
            down_block_types=('DownBlock2D', ) * levels, up_block_types=('UpBlock2D', ) * levels,
            mid_block_type=None, block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block, norm_num_groups=norm_num_groups)
        self.proj_in = nn.Linear(block_out_channels[-1], embed_dim)
        self.proj_out = nn.Linear(embed_dim, block_out_channels[-1])

    def encode(self, patches: torch.Tensor, timesteps: torch.Tensor):
        """``[N, n, P]`` -> tokens ``[N, n, D]`` and the state for :meth:`decode`."""
        u = self.unet
        x = unpatchify(patches, self.p, self.in_channels)  # [N, C, H, W]
        emb = u.time_embedding(u.time_proj(timesteps).to(x.dtype))  # [N, 4 C0]
        x = u.conv_in(x)
        skips = (x, )
        for block in u.down_blocks:
            x, res = block(hidden_states=x, temb=emb)
            skips += res
        grid = x.shape[-2:]
        tokens = self.proj_in(x.flatten(2).transpose(1, 2))  # [N, n, D], raster order
        return tokens, (skips, emb, grid)

    def decode(self, hidden: torch.Tensor, state) -> torch.Tensor:
        """Hidden ``[N, n, D]`` and the state of :meth:`encode` -> noise ``[N, n, P]``."""
        u = self.unet
        skips, emb, grid = state
        x = self.proj_out(hidden).transpose(1, 2).unflatten(2, grid)  # [N, C_last, h, w]
        for block in u.up_blocks:
            k = len(block.resnets)
            x, skips = block(x, skips[-k:], emb), skips[:-k]
        x = u.conv_out(u.conv_act(u.conv_norm_out(x)))  # [N, C, H, W]
        return patchify(x, self.p)


class Context:
    """The sequence seen so far during sampling, with or without a KV cache.

    ``extend`` runs new positions (input embeddings ``[B, m, D]``) against
    everything before them and returns their last hidden states; with
    ``write=False`` they are not kept (a denoising step). With
    ``use_cache=False`` the whole sequence is rerun from its input
    embeddings every time (the reference the cache is tested against).
    """

    def __init__(self, model: 'TransfusionTransformer', batch_size: int, device,
                 use_cache: bool = True):
        self.model, self.use_cache = model, use_cache
        self.cache = [{} for _ in model.blocks] if use_cache else None
        self.inputs = torch.zeros(batch_size, 0, model.embed_dim, device=device)
        self.positions = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        self.image_ids = torch.zeros(batch_size, 0, dtype=torch.long, device=device)
        self.valid = torch.zeros(batch_size, 0, dtype=torch.bool, device=device)
        self.next_pos = torch.zeros(batch_size, dtype=torch.long, device=device)

    def subset(self, rows: torch.Tensor) -> 'Context':
        """The same context for the rows ``rows`` (bool ``[B]``), sharing nothing mutable."""
        sub = Context.__new__(Context)
        sub.model, sub.use_cache = self.model, self.use_cache
        sub.cache = None if self.cache is None else [
            {k: v[rows] for k, v in c.items()} for c in self.cache]
        for name in ('inputs', 'positions', 'image_ids', 'valid', 'next_pos'):
            setattr(sub, name, getattr(self, name)[rows])
        return sub

    def extend(self, x: torch.Tensor, image_ids: torch.Tensor, valid: torch.Tensor,
               write: bool = True) -> torch.Tensor:
        """Run ``x`` ``[B, m, D]`` (``image_ids``, ``valid`` ``[B, m]``) after the context ->
        hidden ``[B, m, D]``; valid positions take the next RoPE positions."""
        m = x.shape[1]
        positions = self.next_pos[:, None] + (valid.long().cumsum(1) - 1).clamp(min=0)
        all_ids = torch.cat([self.image_ids, image_ids], 1)
        all_valid = torch.cat([self.valid, valid], 1)
        if self.use_cache:
            mask = mixed_modal_mask(all_ids, all_valid, num_queries=m)
            h = self.model.run(x, positions, mask, self.cache, write)
        else:
            all_x = torch.cat([self.inputs, x], 1)
            all_pos = torch.cat([self.positions, positions], 1)
            h = self.model.run(all_x, all_pos, mixed_modal_mask(all_ids, all_valid))[:, -m:]
        if write:
            self.inputs = torch.cat([self.inputs, x], 1)
            self.positions = torch.cat([self.positions, positions], 1)
            self.image_ids, self.valid = all_ids, all_valid
            self.next_pos = self.next_pos + valid.long().sum(1)
        return h


@MODELS.register_module()
class TransfusionTransformer(BaseModule):
    """The Transfusion transformer.

    Args:
        arch: ``'0.16b'``, ``'0.37b'``, ``'0.76b'``, ``'1.4b'``, ``'7b'`` or a
            dict of ``embed_dim``, ``depth``, ``num_heads``.
        vocab_size: Text vocabulary, special tokens included.
        patch_dim: Values a patch: latent channels x k x k (8 x 2 x 2 = 32).
        patch_embed: How patches enter and leave the transformer:
            ``LinearPatchEmbed`` (default) or ``UNetPatchEmbed`` (U-Net down
            and up blocks).
        ffn_dim: SwiGLU width (default: Llama's rounding of 8/3 x width).
        norm_eps: RMSNorm epsilon (1e-5, Llama-2's).
        rope_base: RoPE base (10000).
        attn_impl: ``'sdpa'`` (boolean mask), ``'flex'`` (FlexAttention block
            mask) or ``'auto'`` (flex on CUDA where it is available, else sdpa)
            for the full-sequence (training) pass; sampling uses SDPA.
        with_cp: Gradient checkpointing of the blocks.
    """

    def __init__(self,
                 arch='0.16b',
                 vocab_size: int = 32000,
                 patch_dim: int = 32,
                 ffn_dim: Optional[int] = None,
                 norm_eps: float = 1e-5,
                 rope_base: float = 10000.0,
                 attn_impl: str = 'auto',
                 with_cp: bool = False,
                 patch_embed: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise KeyError(f'TransfusionTransformer arch {arch!r} is not one of '
                               f'{sorted(ARCHS)}')
            arch = ARCHS[arch]
        if attn_impl not in ('sdpa', 'flex', 'auto'):
            raise ValueError(f"attn_impl must be 'sdpa', 'flex' or 'auto', got {attn_impl!r}")
        dim, depth, heads = arch['embed_dim'], arch['depth'], arch['num_heads']
        self.embed_dim, self.vocab_size, self.patch_dim = dim, vocab_size, patch_dim
        self.attn_impl, self.with_cp = attn_impl, with_cp
        ffn_dim = ffn_dim or swiglu_hidden_dim(dim)
        self.embed_tokens = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList(
            LlamaBlock(dim, heads, ffn_dim, norm_eps, rope_base) for _ in range(depth))
        self.norm = RMSNorm(dim, norm_eps)
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        _init_normal(self)
        # built after the initialisation above: the patch embedding initialises itself
        patch_embed = dict(patch_embed or dict(type='LinearPatchEmbed'))
        self.patch_embed = MODELS.build(dict(patch_embed, patch_dim=patch_dim, embed_dim=dim))

    # -- pieces ---------------------------------------------------------------------------
    def embed_patches(self, patches: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """``[N, n, P]`` patches at ``timesteps`` ``[N]`` -> ``[N, n, D]`` (clean context)."""
        return self.patch_embed.encode(patches, timesteps)[0]

    def run(self, x: torch.Tensor, positions: torch.Tensor, mask, cache=None,
            write_cache: bool = True) -> torch.Tensor:
        """The blocks and the final norm: ``[B, m, D]`` -> ``[B, m, D]``."""
        for i, blk in enumerate(self.blocks):
            if cache is not None:
                x = blk(x, positions, mask, cache[i], write_cache)
            elif self.with_cp and self.training:
                x = checkpoint(blk, x, positions, mask, use_reentrant=False)
            else:
                x = blk(x, positions, mask)
        return self.norm(x)

    def use_flex(self, device) -> bool:
        if self.attn_impl == 'flex':
            return True
        return (self.attn_impl == 'auto' and torch.device(device).type == 'cuda'
                and importlib.util.find_spec('torch.nn.attention.flex_attention') is not None)

    # -- the training pass ----------------------------------------------------------------
    def forward(self, input_ids: torch.Tensor, image_ids: torch.Tensor, patches: torch.Tensor,
                timesteps: torch.Tensor, valid: Optional[torch.Tensor] = None,
                doc_ids: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Logits ``[B, L, V]`` at every position and predicted noise ``[N, n, P]`` of each
        image (layout in the module docstring); ``valid`` ``[B, L]`` is False at padding.
        ``doc_ids`` ``[B, L]`` (packed rows): attention stays within each document and the
        RoPE positions restart at each document's first position."""
        if valid is None:
            valid = torch.ones_like(input_ids, dtype=torch.bool)
        is_patch = image_ids >= 0  # [B, L]
        N, n, _ = patches.shape
        if int(is_patch.sum()) != N * n:
            raise ValueError(f'image_ids mark {int(is_patch.sum())} patch positions, but '
                             f'{N} images of {n} patches were given')
        x = self.embed_tokens(input_ids)  # [B, L, D]
        tokens, state = self.patch_embed.encode(patches, timesteps)  # [N, n, D]
        x = x.masked_scatter(is_patch[..., None], tokens)
        if doc_ids is None:
            positions = (valid.long().cumsum(1) - 1).clamp(min=0)  # [B, L]
        else:
            index = torch.arange(input_ids.shape[1], device=x.device).expand_as(input_ids)
            first = torch.ones_like(valid)
            first[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
            positions = index - torch.where(first, index, 0).cummax(1).values  # [B, L]
        if self.use_flex(x.device):
            mask = mixed_modal_block_mask(image_ids, valid, doc_ids)
        else:
            mask = mixed_modal_mask(image_ids, valid, doc_ids=doc_ids)
        h = self.run(x, positions, mask)
        eps = self.patch_embed.decode(h[is_patch].view(N, n, -1), state)  # [N, n, P]
        return self.lm_head(h), eps

    # -- sampling -------------------------------------------------------------------------
    def _feed_tokens(self, ctx: Context, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Append tokens ``ids`` ``[B, m]`` -> fp32 logits ``[B, V]`` after the last one."""
        h = ctx.extend(self.embed_tokens(ids), torch.full_like(ids, -1), valid)
        return self.lm_head(h[:, -1]).float()

    def _denoise(self, ctx: Context, uncond: Optional[Context], num_patches: int, scheduler,
                 guidance_scale: float, generator: Optional[torch.Generator]) -> torch.Tensor:
        """Denoise ``num_patches`` noise patches in place after ``ctx`` -> clean ``[B, n, P]``.

        Every step runs the patches against the (unchanged) context; with
        ``uncond`` the noise is ``uncond + s * (cond - uncond)``, ``uncond``
        from the same patches after an empty caption.
        """
        B = ctx.next_pos.shape[0]
        device = ctx.next_pos.device
        x = torch.randn(B, num_patches, self.patch_dim, generator=generator, device=device)
        x = x * scheduler.init_noise_sigma
        ids = torch.zeros(B, num_patches, dtype=torch.long, device=device)  # one image a row
        valid = torch.ones(B, num_patches, dtype=torch.bool, device=device)
        for t in scheduler.timesteps:
            tt = torch.full((B, ), int(t), device=device)
            emb, state = self.patch_embed.encode(x, tt)
            eps = self.patch_embed.decode(ctx.extend(emb, ids, valid, write=False), state).float()
            if uncond is not None:
                h_u = uncond.extend(emb, ids, valid, write=False)
                eps_u = self.patch_embed.decode(h_u, state).float()
                eps = eps_u + guidance_scale * (eps - eps_u)
            x = scheduler.step(eps, t, x, generator=generator).prev_sample
        return x

    @torch.no_grad()
    def generate(self,
                 input_ids: torch.Tensor,
                 special_ids: dict,
                 num_patches: int,
                 scheduler,
                 valid: Optional[torch.Tensor] = None,
                 image_ids: Optional[torch.Tensor] = None,
                 patches: Optional[torch.Tensor] = None,
                 max_new_tokens: int = 32,
                 max_images: int = 1,
                 guidance_scale: float = 1.0,
                 temperature: float = 1.0,
                 use_cache: bool = True,
                 generator: Optional[torch.Generator] = None):
        """The paper's decoding loop from left-padded prompts.

        Args:
            input_ids: Prompts ``[B, L]``, left-padded (``valid`` False there);
                a prompt may hold clean images (``image_ids`` / ``patches`` as in
                :meth:`forward`, timestep 0), e.g. ``<bos><boi>image<eoi>`` for
                captioning. A prompt that ends in BOI starts with an image.
            special_ids: ids of ``'boi'``, ``'eoi'``, ``'eos'``, ``'bos'``, ``'pad'``.
            num_patches: ``n``, patches of a generated image.
            scheduler: A diffusers scheduler with its timesteps set
                (``DDIMScheduler.set_timesteps``).
            max_new_tokens: Text tokens to sample at most (0: only the image a
                BOI-ended prompt asks for).
            max_images: Images a row may generate; beyond them BOI is not sampled.
            guidance_scale: Classifier-free guidance of images (1: none).
            temperature: Text sampling temperature (0: greedy).
            use_cache: KV cache (else every step reruns the sequence).

        Returns:
            ``tokens`` ``[B, m]`` (sampled text ids, BOI / EOI included, ``pad``
            after EOS) and ``images``: for each row, the list of its generated
            ``[n, P]`` patch tensors.
        """
        B, L = input_ids.shape
        device = input_ids.device
        boi, eoi, eos, pad = (special_ids[k] for k in ('boi', 'eoi', 'eos', 'pad'))
        if valid is None:
            valid = torch.ones_like(input_ids, dtype=torch.bool)
        if image_ids is None:
            image_ids = torch.full_like(input_ids, -1)
        images: List[list] = [[] for _ in range(B)]
        tokens = []
        with eval_mode(self):
            ctx = Context(self, B, device, use_cache)
            x = self.embed_tokens(input_ids)
            if patches is not None and len(patches):
                zero = torch.zeros(patches.shape[0], dtype=torch.long, device=device)
                x = x.masked_scatter((image_ids >= 0)[..., None], self.embed_patches(patches, zero))
            h = ctx.extend(x, image_ids, valid)
            logits = self.lm_head(h[:, -1]).float()  # [B, V]
            start_image = input_ids[:, -1] == boi
            done = torch.zeros(B, dtype=torch.bool, device=device)
            num_images = torch.zeros(B, dtype=torch.long, device=device)
            step = 0
            while True:
                if start_image.any():
                    logits = self._image_in_place(ctx, start_image, logits, images, num_patches,
                                                  scheduler, guidance_scale, special_ids,
                                                  generator)
                    num_images += start_image.long()
                    tokens.append(torch.where(start_image, eoi, pad))
                if step == max_new_tokens or done.all():
                    break
                logits[num_images >= max_images, boi] = float('-inf')
                if temperature == 0:
                    tok = logits.argmax(-1)
                else:
                    probs = F.softmax(logits / temperature, -1)
                    tok = torch.multinomial(probs, 1, generator=generator)[:, 0]
                tok = torch.where(done, pad, tok)
                tokens.append(tok)
                logits = self._feed_tokens(ctx, tok[:, None], ~done[:, None])
                start_image = (tok == boi) & ~done
                done = done | (tok == eos)
                step += 1
        tokens = torch.stack(tokens, 1) if tokens else input_ids.new_zeros(B, 0)
        return tokens, images

    def _image_in_place(self, ctx: Context, rows: torch.Tensor, logits: torch.Tensor,
                        images: list, num_patches: int, scheduler, guidance_scale: float,
                        special_ids: dict, generator) -> torch.Tensor:
        """Generate an image for ``rows`` (their context ends in BOI), write it into the
        context at timestep 0, append EOI; the other rows get masked slots. Returns the
        logits after EOI (``rows``) or the unchanged ``logits`` (the rest)."""
        B = rows.shape[0]
        device = rows.device
        uncond = None
        n_rows = int(rows.sum())
        if guidance_scale != 1.0:  # the image after no caption: <bos><boi>
            uncond = Context(self, n_rows, device, ctx.use_cache)
            prefix = torch.tensor([special_ids['bos'], special_ids['boi']], device=device)
            prefix = prefix.repeat(n_rows, 1)
            uncond.extend(self.embed_tokens(prefix), torch.full_like(prefix, -1),
                          torch.ones_like(prefix, dtype=torch.bool))
        clean = self._denoise(ctx.subset(rows), uncond, num_patches, scheduler, guidance_scale,
                              generator)  # [n_rows, n, P]
        for r, img in zip(torch.nonzero(rows).flatten().tolist(), clean):
            images[r].append(img)
        full = torch.zeros(B, num_patches, self.patch_dim, device=device)
        full[rows] = clean.to(full.dtype)
        zero = torch.zeros(B, dtype=torch.long, device=device)
        img_id = int(ctx.image_ids.max().clamp(min=-1)) + 1 if ctx.image_ids.numel() else 0
        ids = torch.full((B, num_patches), img_id, dtype=torch.long, device=device)
        slot_valid = rows[:, None].expand(-1, num_patches)
        ctx.extend(self.embed_patches(full, zero), ids, slot_valid)
        eoi = torch.full((B, 1), special_ids['eoi'], dtype=torch.long, device=device)
        after = self._feed_tokens(ctx, eoi, rows[:, None])
        return torch.where(rows[:, None], after, logits)
