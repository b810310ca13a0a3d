"""The Vision Transformer (Dosovitskiy et al., 2021) of mmmim.

One backbone for every method. Parameter names follow timm's ViT / BEiT
(``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.N.*``, ``norm``),
so official MAE encoder weights load with no renaming.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModule
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmmim.registry import MODELS
from ..layers import (Block, RelativePositionBias, rescale_block_outputs, resize_pos_embed,
                      sincos_2d, trunc_normal_one_std)
from ..layers.attention import ACTIVATIONS

ARCHS = {
    'tiny': dict(embed_dim=192, depth=12, num_heads=3, mlp_ratio=4.0),
    'small': dict(embed_dim=384, depth=12, num_heads=6, mlp_ratio=4.0),
    'base': dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4.0),
    'large': dict(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4.0),
    'huge': dict(embed_dim=1280, depth=32, num_heads=16, mlp_ratio=4.0),
    # EVA-CLIP ViT-g/14 as BLIP-2 runs it: 39 of its 40 blocks, MLP 6144 (LAVIS eva_vit.py)
    'eva-g': dict(embed_dim=1408, depth=39, num_heads=16, mlp_ratio=4.3637),
    # CLIP ViT-L/14 as BLIP-2 runs it: LAVIS's create_clip_vit_L builds 21 of its 24 blocks
    'clip-l': dict(embed_dim=1024, depth=21, num_heads=16, mlp_ratio=4.0),
}
OUT_TYPES = ('raw', 'cls_token', 'featmap', 'avg_featmap')


def _pair(x: Union[int, Sequence[int]]) -> Tuple[int, int]:
    return (x, x) if isinstance(x, int) else tuple(x)


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens with one strided convolution."""

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int, bias: bool = True):
        super().__init__()
        self.patch_size = _pair(patch_size)
        self.proj = nn.Conv2d(in_channels, embed_dim, self.patch_size, self.patch_size, bias=bias)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        H, W = x.shape[-2:]
        p = self.patch_size
        if H % p[0] or W % p[1]:
            raise ValueError(f'input size {H}x{W} is not divisible by the patch size {p}')
        x = self.proj(x)  # [B, C, h, w]
        return x.flatten(2).transpose(1, 2), x.shape[-2:]  # [B, h*w, C]


@MODELS.register_module()
class ViT(BaseModule):
    """Vision Transformer with the options of the MIM family.

    Args:
        arch: ``'tiny' | 'small' | 'base' | 'large' | 'huge' | 'eva-g' | 'clip-l'`` or a dict with
            ``embed_dim``, ``depth``, ``num_heads`` and ``mlp_ratio``.
        img_size: Training input size; sets the position-embedding grid.
        patch_size: Patch side in pixels.
        in_channels: Input channels.
        pos_embed: ``'learned'``, ``'sincos'`` (fixed 2D sin-cos, MAE) or
            ``None`` (BEiT with relative position bias).
        with_cls_token: Prepend a class token.
        qkv_bias: Bias on the fused qkv projection.
        qv_bias: BEiT's q / v biases instead (no key bias).
        rel_pos_bias: ``None``, ``'shared'`` (one table, BEiT pretraining) or
            ``'per_layer'`` (one table per block, BEiT fine-tuning).
        use_rel_pos: ViTDet's decomposed relative positions instead
            (``blocks.N.attn.rel_pos_h`` / ``rel_pos_w``, query-dependent,
            zero-initialised), sized for the window in windowed blocks and
            for the patch grid in global blocks. Needs ``with_cls_token=False``.
        layer_scale_init_value: Initial layer scale; 0 disables it.
        drop_rate: Dropout after position embedding and in blocks.
        attn_drop_rate: Dropout on attention weights.
        drop_path_rate: Stochastic depth, increased linearly over the blocks.
        norm_eps: LayerNorm epsilon.
        out_type: What each output index returns: ``'raw'`` tokens
            ``[B, N, C]``, ``'cls_token'`` ``[B, C]``, ``'featmap'`` patch
            tokens as ``[B, C, h, w]`` or ``'avg_featmap'`` (mean of patch
            tokens through ``fc_norm``, ``[B, C]``; the final ``norm`` is then
            not built, as in MAE fine-tuning).
        out_indices: Blocks whose outputs are returned (negative counts back).
        final_norm: Apply ``norm`` to the last block's output.
        with_cp: Activation checkpointing during training: ``True`` for every
            block, an int N for the last N blocks (BLIP's ``vit_ckpt_layer``).
        window_size: Side, in patches, of the attention windows of the
            ``window_block_indexes`` blocks (ViTDet: 14). A grid that is not
            a multiple of it is zero-padded for those blocks.
        window_block_indexes: Blocks that attend within windows (negative
            counts back); the others attend globally. Their relative
            position tables (per-layer or decomposed) are built for the
            window. Windows have no place for a class token: set
            ``with_cls_token=False`` (a checkpoint's class token and its
            ``pos_embed`` entry are then dropped on load).
        frozen_stages: Freeze the embeddings and the first ``frozen_stages``
            blocks (``depth`` also freezes the final norm): no gradients,
            always in eval mode. -1 freezes nothing (linear probing: depth).
        patch_bias: Bias on the patch projection (CLIP's has none).
        pre_norm: A LayerNorm ``norm_pre`` on the embedded tokens before the
            blocks (CLIP's ``ln_pre``; timm's ``pre_norm``).
        act_layer: MLP activation, ``'gelu'`` or ``'quick_gelu'`` (CLIP).
        init_cfg: MMEngine init config. ``dict(type='Pretrained',
            checkpoint=PATH_OR_URL, prefix='backbone.')`` loads any supported
            layout (official MAE / BEiT, timm, mmpretrain, mmseg, mmmim)
            through :func:`mmmim.checkpoint.load_pretrained`.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 img_size: Union[int, Sequence[int]] = 224,
                 patch_size: int = 16,
                 in_channels: int = 3,
                 pos_embed: Optional[str] = 'learned',
                 with_cls_token: bool = True,
                 qkv_bias: bool = True,
                 qv_bias: bool = False,
                 rel_pos_bias: Optional[str] = None,
                 use_rel_pos: bool = False,
                 layer_scale_init_value: float = 0.0,
                 drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0,
                 drop_path_rate: float = 0.0,
                 norm_eps: float = 1e-6,
                 out_type: str = 'cls_token',
                 out_indices: Union[int, Sequence[int]] = -1,
                 final_norm: bool = True,
                 with_cp: Union[bool, int] = False,
                 frozen_stages: int = -1,
                 window_size: int = 0,
                 window_block_indexes: Sequence[int] = (),
                 patch_bias: bool = True,
                 pre_norm: bool = False,
                 act_layer: str = 'gelu',
                 init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        if isinstance(arch, str):
            if arch not in ARCHS:
                raise KeyError(f'unknown ViT arch {arch!r}; choose from {sorted(ARCHS)} or pass a dict')
            arch = ARCHS[arch]
        missing = {'embed_dim', 'depth', 'num_heads'} - set(arch)
        if missing:
            raise KeyError(f'ViT arch dict lacks {sorted(missing)}')
        if pos_embed not in ('learned', 'sincos', None):
            raise ValueError(f"pos_embed must be 'learned', 'sincos' or None, got {pos_embed!r}")
        if rel_pos_bias not in (None, 'shared', 'per_layer'):
            raise ValueError(f"rel_pos_bias must be None, 'shared' or 'per_layer', got {rel_pos_bias!r}")
        if use_rel_pos and rel_pos_bias is not None:
            raise ValueError(f'use_rel_pos (decomposed, ViTDet) and rel_pos_bias={rel_pos_bias!r} '
                             '(BEiT tables) are two kinds of relative position; choose one')
        if use_rel_pos and with_cls_token:
            raise ValueError('decomposed relative positions (use_rel_pos) cover patch tokens only; '
                             'set with_cls_token=False (as ViTDet does)')
        if act_layer not in ACTIVATIONS:
            raise ValueError(f'act_layer must be one of {sorted(ACTIVATIONS)}, got {act_layer!r}')
        if out_type not in OUT_TYPES:
            raise ValueError(f'out_type must be one of {OUT_TYPES}, got {out_type!r}')
        if out_type == 'cls_token' and not with_cls_token:
            raise ValueError("out_type='cls_token' needs with_cls_token=True")
        self.embed_dim = C = arch['embed_dim']
        self.depth = arch['depth']
        self.num_heads = arch['num_heads']
        self.img_size = _pair(img_size)
        self.patch_size = patch_size
        self.grid_size = (self.img_size[0] // patch_size, self.img_size[1] // patch_size)
        self.num_extra_tokens = int(with_cls_token)
        self.out_type = out_type
        self.final_norm = final_norm and out_type != 'avg_featmap'
        # the first block index that is checkpointed (depth: none)
        self.first_cp_block = 0 if with_cp is True else self.depth - int(with_cp)
        out_indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
        self.out_indices = sorted(i % self.depth for i in out_indices)
        self.window_size = window_size
        self.window_block_indexes = sorted({i % self.depth for i in window_block_indexes})
        if self.window_block_indexes:
            if window_size <= 0:
                raise ValueError(f'window_block_indexes {self.window_block_indexes} need '
                                 'window_size > 0')
            if with_cls_token:
                raise ValueError('windowed attention has no place for a class token; '
                                 'set with_cls_token=False (as ViTDet does)')
            if rel_pos_bias == 'shared':
                raise ValueError("one shared relative position table cannot serve windowed and "
                                 "global blocks; use rel_pos_bias='per_layer'")

        self.patch_embed = PatchEmbed(patch_size, in_channels, C, patch_bias)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C)) if with_cls_token else None
        self.pos_embed_type = pos_embed
        num_tokens = self.num_extra_tokens + self.grid_size[0] * self.grid_size[1]
        if pos_embed == 'sincos':
            self.pos_embed = nn.Parameter(
                sincos_2d(self.grid_size, C, self.num_extra_tokens), requires_grad=False)
        elif pos_embed == 'learned':
            self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, C))
        else:
            self.pos_embed = None
        self.pos_drop = nn.Dropout(drop_rate)
        self.norm_pre = nn.LayerNorm(C, eps=norm_eps) if pre_norm else None
        self.rel_pos_bias = RelativePositionBias(self.grid_size, self.num_heads) \
            if rel_pos_bias == 'shared' else None
        dpr = torch.linspace(0, drop_path_rate, self.depth).tolist()
        windows = [window_size if i in self.window_block_indexes else 0 for i in range(self.depth)]
        self.blocks = nn.ModuleList([
            Block(C, self.num_heads, arch.get('mlp_ratio', 4.0), qkv_bias, qv_bias,
                  ((ws, ws) if ws else self.grid_size) if rel_pos_bias == 'per_layer' else None,
                  layer_scale_init_value, drop_rate, attn_drop_rate, dpr[i], norm_eps, ws,
                  ((ws, ws) if ws else self.grid_size) if use_rel_pos else None, act_layer)
            for i, ws in enumerate(windows)
        ])
        self.norm = nn.LayerNorm(C, eps=norm_eps) if self.final_norm else None
        self.fc_norm = nn.LayerNorm(C, eps=norm_eps) if out_type == 'avg_featmap' else None
        self._init_vit_weights()
        self.frozen_stages = frozen_stages
        for p in self.frozen_parameters():
            p.requires_grad = False

    def frozen_modules(self) -> list:
        """Modules fixed by ``frozen_stages`` (kept in eval mode)."""
        if self.frozen_stages < 0:
            return []
        modules = [self.patch_embed, self.pos_drop, *self.blocks[:self.frozen_stages]]
        for m in (self.norm_pre, self.rel_pos_bias):
            if m is not None:
                modules.append(m)
        if self.frozen_stages >= self.depth and self.norm is not None:
            modules.append(self.norm)
        return modules

    def frozen_parameters(self) -> list:
        if self.frozen_stages < 0:
            return []
        params = [p for m in self.frozen_modules() for p in m.parameters()]
        return params + [p for p in (self.cls_token, self.pos_embed) if p is not None]

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.frozen_modules():
            m.eval()
        return self

    # ------------------------------------------------------------------ init
    def _init_vit_weights(self):
        """timm's ViT init: truncated normal(0.02) for linear layers and tokens.

        Relative position tables (BEiT's and the decomposed ones) stay at
        zero, as in BEiT, timm and ViTDet (``rel_pos_zero_init``).
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        if self.pos_embed_type == 'learned':
            nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def init_weights(self):
        """Load ``init_cfg``'s pretrained checkpoint in any supported layout."""
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmmim.checkpoint import load_pretrained  # checkpoint reads models' layers
            load_pretrained(self, cfg['checkpoint'], cfg.get('prefix', 'backbone.'))
            self._is_init = True
        else:
            super().init_weights()

    # ------------------------------------------------------------- embedding
    def pos_embed_for(self, grid: Tuple[int, int]) -> torch.Tensor:
        """Position table for a patch grid, ``[1, extra + h*w, C]``."""
        grid = tuple(grid)
        if grid == self.grid_size:
            return self.pos_embed
        if self.pos_embed_type == 'sincos':
            table = sincos_2d(grid, self.embed_dim, self.num_extra_tokens)
            return table.to(self.pos_embed.device, self.pos_embed.dtype)
        return resize_pos_embed(self.pos_embed, self.grid_size, grid, self.num_extra_tokens)

    def embed_patches(self, x: torch.Tensor) -> Tuple[torch.Tensor, Tuple[int, int]]:
        """Images ``[B, 3, H, W]`` to patch tokens with position embedding, ``[B, h*w, C]``."""
        x, grid = self.patch_embed(x)
        if self.pos_embed is not None:
            x = x + self.pos_embed_for(grid)[:, self.num_extra_tokens:]
        return x, tuple(grid)

    def prepend_cls_token(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, L, C] -> [B, 1 + L, C]`` (no-op without a class token)."""
        if self.cls_token is None:
            return x
        cls = self.cls_token
        if self.pos_embed is not None:
            cls = cls + self.pos_embed[:, :1]
        return torch.cat([cls.expand(x.shape[0], -1, -1), x], dim=1)

    # --------------------------------------------------------------- forward
    def forward_blocks(self, x: torch.Tensor, grid: Tuple[int, int], final_norm: bool = True):
        """Run the blocks on ``[B, N, C]`` tokens; yield ``(index, tokens)`` at out_indices.

        The tokens go through ``norm_pre`` first where built; the last block's
        output goes through ``norm`` unless ``final_norm`` is False.
        """
        rel_pos_bias = None if self.rel_pos_bias is None else self.rel_pos_bias(grid)
        x = self.pos_drop(x)
        if self.norm_pre is not None:
            x = self.norm_pre(x)
        for i, blk in enumerate(self.blocks):
            if i >= self.first_cp_block and self.training:
                x = checkpoint(blk, x, rel_pos_bias, grid, use_reentrant=False)
            else:
                x = blk(x, rel_pos_bias, grid)
            if i == self.depth - 1 and self.norm is not None and final_norm:
                x = self.norm(x)
            if i in self.out_indices:
                yield i, x

    def format_output(self, x: torch.Tensor, grid: Tuple[int, int]) -> torch.Tensor:
        """Turn ``[B, N, C]`` tokens into the configured ``out_type``."""
        if self.out_type == 'raw':
            return x
        if self.out_type == 'cls_token':
            return x[:, 0]
        patches = x[:, self.num_extra_tokens:]  # [B, h*w, C]
        if self.out_type == 'featmap':
            B, _, C = patches.shape
            return patches.transpose(1, 2).reshape(B, C, *grid)  # [B, C, h, w]
        return self.fc_norm(patches.mean(dim=1))  # [B, C]

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Images ``[B, 3, H, W]`` to one output per ``out_indices`` entry."""
        tokens, grid = self.embed_patches(x)
        tokens = self.prepend_cls_token(tokens)
        return tuple(self.format_output(t, grid) for _, t in self.forward_blocks(tokens, grid))

    # ------------------------------------------------------------ utilities
    def get_layer_depth(self, param_name: str, prefix: str = '') -> Tuple[int, int]:
        """Layer id of a parameter for layer-wise lr decay, and the layer count.

        Embeddings, tokens and ``norm_pre`` are layer 0, block ``i`` is layer ``i + 1``, and
        everything after the blocks (norms, heads) and the shared relative
        position table are layer ``depth + 1`` (BEiT's ``get_num_layer_for_vit``).
        """
        num_layers = self.depth + 2
        if not param_name.startswith(prefix):
            return num_layers - 1, num_layers  # not a backbone parameter (head, neck)
        name = param_name[len(prefix):]
        if name.startswith(('cls_token', 'pos_embed', 'patch_embed', 'mask_token', 'norm_pre')):
            return 0, num_layers
        if name.startswith('blocks.'):
            return int(name.split('.')[1]) + 1, num_layers
        return num_layers - 1, num_layers

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Resize a checkpoint's ``pos_embed`` to this model's grid on load.

        A model without a class token drops the class-token entry of a
        table that has one (``1 + side*side`` entries).
        """
        key = prefix + 'pos_embed'
        if self.pos_embed is not None and key in state_dict:
            src = state_dict[key]
            n = src.shape[1]
            with_cls_entry = math.isqrt(n)**2 != n and math.isqrt(n - 1)**2 == n - 1
            if self.num_extra_tokens == 0 and with_cls_entry:
                src = state_dict[key] = src[:, 1:]
                print_log(f'dropped the class-token entry of {key}: this ViT has no class token',
                          logger='current')
            if src.shape != self.pos_embed.shape:
                n_src = src.shape[1] - self.num_extra_tokens
                side = math.isqrt(n_src)
                if side * side != n_src or src.shape[-1] != self.embed_dim:
                    raise ValueError(f'cannot resize {key} of shape {tuple(src.shape)} '
                                     f'to {tuple(self.pos_embed.shape)}')
                state_dict[key] = resize_pos_embed(src, (side, side), self.grid_size,
                                                   self.num_extra_tokens)
                print_log(f'resized {key} from {side}x{side} to '
                          f'{self.grid_size[0]}x{self.grid_size[1]} patches', logger='current')
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


@MODELS.register_module()
class MAEViT(ViT):
    """MAE's encoder (He et al., 2022): the same ViT, run on visible patches only.

    Defaults follow the official encoder: fixed 2D sin-cos position
    embedding, class token, LayerNorm eps 1e-6, and the official
    initialisation (xavier-uniform linear layers and patch projection,
    normal(0.02) class token). ``forward`` on full images extracts features.
    """

    def __init__(self, arch: Union[str, dict] = 'base', pos_embed: Optional[str] = 'sincos',
                 out_type: str = 'raw', **kwargs):
        super().__init__(arch, pos_embed=pos_embed, out_type=out_type, **kwargs)
        init_mae_weights(self)
        nn.init.normal_(self.cls_token, std=0.02)

    @staticmethod
    def random_masking(x: torch.Tensor, mask_ratio: float, noise: Optional[torch.Tensor] = None):
        """Keep a random subset of tokens per sample, by sorting uniform noise.

        Args:
            x: Patch tokens ``[B, L, C]``.
            mask_ratio: Fraction of tokens removed.
            noise: ``[B, L]`` uniform noise (drawn on the device if None).

        Returns:
            Visible tokens ``[B, L_keep, C]``, the binary mask ``[B, L]``
            (1 = removed) and ``ids_restore`` ``[B, L]`` that unshuffles.
        """
        B, L, C = x.shape
        len_keep = int(L * (1 - mask_ratio))
        if noise is None:
            noise = torch.rand(B, L, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)  # ascending: small noise is kept
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_visible = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, C))
        mask = torch.ones(B, L, device=x.device, dtype=x.dtype)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return x_visible, mask, ids_restore

    def forward_masked(self, imgs: torch.Tensor, mask_ratio: float,
                       noise: Optional[torch.Tensor] = None):
        """Encode the visible patches: latent ``[B, 1 + L_keep, C]``, mask, ids_restore."""
        x, grid = self.embed_patches(imgs)
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)
        x = self.prepend_cls_token(x)
        for _, x in self.forward_blocks(x, grid):
            pass
        return x, mask, ids_restore


def init_mae_weights(module: nn.Module):
    """Official MAE init: xavier-uniform linear layers and patch projections.

    The projection weight is initialised as a linear layer on its flattened
    ``[out, in * p * p]`` view; LayerNorms get ones / zeros.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, PatchEmbed):
            w = m.proj.weight.data
            nn.init.xavier_uniform_(w.view(w.shape[0], -1))


@MODELS.register_module()
class BEiTViT(ViT):
    """BEiT's encoder (Bao et al., 2022): masked patch embeddings are replaced
    by a learnable ``mask_token`` and the whole sequence is encoded.

    Defaults follow the official pretraining model: no absolute position
    embedding, one shared relative position bias, q / v biases, layer scale
    0.1 (use 1e-5 for ViT-L), and the official initialisation (truncated
    normal 0.02 cut at one std, then each block's output projections divided
    by ``sqrt(2 * layer)``). ``forward`` on full images extracts features.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 pos_embed: Optional[str] = None,
                 qkv_bias: bool = False,
                 qv_bias: bool = True,
                 rel_pos_bias: Optional[str] = 'shared',
                 layer_scale_init_value: float = 0.1,
                 out_type: str = 'raw',
                 **kwargs):
        super().__init__(arch, pos_embed=pos_embed, qkv_bias=qkv_bias, qv_bias=qv_bias,
                         rel_pos_bias=rel_pos_bias, layer_scale_init_value=layer_scale_init_value,
                         out_type=out_type, **kwargs)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, self.embed_dim))
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                trunc_normal_one_std(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        for token in (self.cls_token, self.mask_token):
            trunc_normal_one_std(token)
        rescale_block_outputs(self.blocks)

    def forward_masked(self, imgs: torch.Tensor, mask: torch.Tensor,
                       final_norm: bool = True) -> Tuple[torch.Tensor, ...]:
        """Encode images with masked patches replaced by the mask token.

        Args:
            imgs: ``[B, 3, H, W]``.
            mask: ``[B, L]`` or ``[B, h, w]``, True = masked.
            final_norm: Pass the last block's output through ``norm``.

        Returns:
            Tokens ``[B, 1 + L, C]`` after each block in ``out_indices``.
        """
        x, grid = self.patch_embed(imgs)  # [B, L, C]
        w = mask.flatten(1).unsqueeze(-1).to(x.dtype)  # [B, L, 1]
        x = x * (1 - w) + self.mask_token.to(x.dtype) * w
        if self.pos_embed is not None:
            x = x + self.pos_embed_for(grid)[:, self.num_extra_tokens:]
        x = self.prepend_cls_token(x)
        return tuple(t for _, t in self.forward_blocks(x, tuple(grid), final_norm))


@MODELS.register_module()
class CAEViT(ViT):
    """CAE's encoder (Chen et al., 2023): the same ViT, run on a subset of patches.

    Defaults follow the official encoder: fixed 2D sin-cos position
    embedding with a zero class-token row, q / v biases, layer scale 0.1 (use
    1e-5 for ViT-L), no relative position bias, xavier-uniform linear layers,
    and normal(0.02) truncated at one std for the patch projection (zero
    bias) and the class token. The official code
    puts the row coordinate in the first half of the sin-cos channels, this
    table (MAE's) the column one: a fixed channel permutation, equivalent
    when training from scratch; official files carry their own table.
    """

    def __init__(self,
                 arch: Union[str, dict] = 'base',
                 pos_embed: Optional[str] = 'sincos',
                 qkv_bias: bool = False,
                 qv_bias: bool = True,
                 layer_scale_init_value: float = 0.1,
                 out_type: str = 'raw',
                 **kwargs):
        super().__init__(arch, pos_embed=pos_embed, qkv_bias=qkv_bias, qv_bias=qv_bias,
                         layer_scale_init_value=layer_scale_init_value, out_type=out_type,
                         **kwargs)
        init_mae_weights(self)
        trunc_normal_one_std(self.patch_embed.proj.weight)
        nn.init.zeros_(self.patch_embed.proj.bias)
        trunc_normal_one_std(self.cls_token)

    def forward_subset(self, imgs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Encode the patches where ``keep`` ``[B, L]`` is True (the same count per image).

        Returns:
            Tokens ``[B, 1 + N, C]``: the class token, then the kept patches in
            raster order, through the final norm.
        """
        x, grid = self.embed_patches(imgs)  # [B, L, C]
        B, _, C = x.shape
        x = x[keep].view(B, -1, C)  # [B, N, C]
        x = self.prepend_cls_token(x)
        for _, x in self.forward_blocks(x, grid):
            pass
        return x
