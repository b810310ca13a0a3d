"""MaskGIT-VQGAN (Chang et al., 2022): the convolutional VQ tokenizer of MaskGIT and RAR.

A VQGAN without attention: residual blocks of GroupNorm(32, eps 1e-6) /
SiLU / 3x3 convolutions, average-pool down-sampling, nearest x2 + 3x3 conv
up-sampling, and a codebook looked up by l2 distance. The default is the f16
tokenizer of RAR (256x256 -> 16x16 codes of a 1024 x 256 codebook).

Parameter names follow the official ``maskgit-vqgan-imagenet-f16-256.bin``
(``encoder.*``, ``quantize.embedding.weight``, ``decoder.*``), so that file
loads strictly. Its one quirk is kept: in a block whose width changes, the
1x1 ``nin_shortcut`` is applied to the block's own output, not to its input,
and the sum is ``h + nin_shortcut(h)``.

Images are RGB in [0, 1] in and out (no normalisation).
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from torch import nn

from mmmim.registry import MODELS
from ..layers import freeze


def _norm(channels: int, num_groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups, channels, eps=1e-6, affine=True)


class ResnetBlock(nn.Module):
    """``h = conv2(silu(norm2(conv1(silu(norm1(x))))))``; out ``x + h``, or ``h + nin_shortcut(h)``
    where the width changes (the official behaviour)."""

    def __init__(self, in_channels: int, out_channels: int, dropout: float = 0.0,
                 num_groups: int = 32):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = _norm(in_channels, num_groups)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(out_channels, num_groups)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(out_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(self.dropout(F.silu(self.norm2(h))))
        if self.in_channels != self.out_channels:
            return h + self.nin_shortcut(h)
        return x + h


class _Level(nn.Module):
    """One resolution: ``block`` (residual blocks), then an optional resampling."""

    def __init__(self, in_ch: int, out_ch: int, num_res_blocks: int, dropout: float,
                 num_groups: int, upsample_conv: bool):
        super().__init__()
        self.block = nn.ModuleList(
            ResnetBlock(in_ch if i == 0 else out_ch, out_ch, dropout, num_groups)
            for i in range(num_res_blocks))
        if upsample_conv:
            self.upsample_conv = nn.Conv2d(out_ch, out_ch, 3, padding=1)


class VQGANEncoder(nn.Module):
    """Images ``[B, 3, H, W]`` to latents ``[B, z, H/f, W/f]``, ``f = 2**(len(channel_mult) - 1)``."""

    def __init__(self, hidden_channels: int = 128, channel_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, z_channels: int = 256, dropout: float = 0.0,
                 num_groups: int = 32):
        super().__init__()
        self.conv_in = nn.Conv2d(3, hidden_channels, 3, padding=1, bias=False)
        widths = [hidden_channels * m for m in channel_mult]
        ins = [hidden_channels] + widths[:-1]
        self.down = nn.ModuleList(
            _Level(i, o, num_res_blocks, dropout, num_groups, False) for i, o in zip(ins, widths))
        self.mid = nn.ModuleList(
            ResnetBlock(widths[-1], widths[-1], dropout, num_groups) for _ in range(num_res_blocks))
        self.norm_out = _norm(widths[-1], num_groups)
        self.conv_out = nn.Conv2d(widths[-1], z_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(x)
        for i, level in enumerate(self.down):
            for blk in level.block:
                h = blk(h)
            if i != len(self.down) - 1:
                h = F.avg_pool2d(h, kernel_size=2, stride=2)
        for blk in self.mid:
            h = blk(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class VQGANDecoder(nn.Module):
    """Latents ``[B, z, h, w]`` to images ``[B, 3, h*f, w*f]`` (not clamped).

    ``up[i]`` is resolution level ``i`` (0 = finest); they run from the
    coarsest down, each but level 0 ending in nearest x2 + ``upsample_conv``.
    """

    def __init__(self, hidden_channels: int = 128, channel_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2, z_channels: int = 256, dropout: float = 0.0,
                 num_groups: int = 32):
        super().__init__()
        widths = [hidden_channels * m for m in channel_mult]
        self.conv_in = nn.Conv2d(z_channels, widths[-1], 3, padding=1)
        self.mid = nn.ModuleList(
            ResnetBlock(widths[-1], widths[-1], dropout, num_groups) for _ in range(num_res_blocks))
        ins = widths[1:] + widths[-1:]  # level i receives level i+1's width (the last: its own)
        self.up = nn.ModuleList(
            _Level(ins[i], widths[i], num_res_blocks, dropout, num_groups, i != 0)
            for i in range(len(widths)))
        self.norm_out = _norm(widths[0], num_groups)
        self.conv_out = nn.Conv2d(widths[0], 3, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        for blk in self.mid:
            h = blk(h)
        for level in reversed(self.up):
            for blk in level.block:
                h = blk(h)
            if hasattr(level, 'upsample_conv'):
                h = level.upsample_conv(F.interpolate(h, scale_factor=2.0, mode='nearest'))
        return self.conv_out(F.silu(self.norm_out(h)))


class VectorQuantizer(nn.Module):
    """Nearest code (l2) of each latent vector; the codebook is ``embedding.weight`` ``[K, D]``."""

    def __init__(self, num_embeddings: int = 1024, embedding_dim: int = 256):
        super().__init__()
        self.embedding = nn.Embedding(num_embeddings, embedding_dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / num_embeddings, 1.0 / num_embeddings)

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        """Indices ``[B, h, w]`` of latents ``[B, D, h, w]``."""
        B, D, h, w = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, D).float()  # [B*h*w, D]
        e = self.embedding.weight.float()
        d = flat.pow(2).sum(1, keepdim=True) + e.pow(2).sum(1)[None] - 2 * flat @ e.t()
        return d.argmin(dim=1).view(B, h, w)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, D, h, w]`` of indices ``[B, h, w]``."""
        return self.embedding(ids).permute(0, 3, 1, 2).contiguous()


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())


@MODELS.register_module()
class PatchGANDiscriminator(nn.Module):
    """The PatchGAN of pix2pix / taming VQGAN: strided 4x4 convs, BatchNorm, LeakyReLU(0.2)."""

    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3):
        super().__init__()
        layers = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch = base_channels
        for n in range(1, num_layers + 1):
            out = base_channels * min(2**n, 8)
            stride = 2 if n < num_layers else 1
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=False), nn.BatchNorm2d(out),
                       nn.LeakyReLU(0.2, True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.main = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 0.02)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


@MODELS.register_module()
class VGGPerceptualLoss(nn.Module):
    """LPIPS-style distance on VGG16 features, from weight files the user names (nothing downloads).

    The distance is the sum over the five stages (relu1_2 ... relu5_3) of
    the spatial mean of ``sum_c w_c (f1 - f2)^2`` of channel-normalised
    features; the per-channel ``w`` come from an LPIPS ``vgg.pth`` file
    (``lin{0..4}.model.1.weight``) when given, else all ones.

    Args:
        vgg_weights: torchvision ``vgg16`` state dict file (``features.N.*``).
        lpips_weights: Optional LPIPS linear-layer file.
    """

    STAGE_ENDS = (4, 9, 16, 23, 30)  # indices after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
    WIDTHS = (64, 128, 256, 512, 512)

    def __init__(self, vgg_weights: str, lpips_weights: Optional[str] = None):
        super().__init__()
        from torchvision.models import vgg16

        from mmmim.checkpoint import read_checkpoint, unwrap
        features = vgg16().features[:30]
        sd = unwrap(read_checkpoint(vgg_weights))
        sd = {k[len('features.'):]: v for k, v in sd.items() if k.startswith('features.')}
        result = features.load_state_dict(sd, strict=False)
        if result.missing_keys:
            raise KeyError(f'{vgg_weights} is not a torchvision vgg16 state dict: missing '
                           f'features.{result.missing_keys[0]} (and {len(result.missing_keys) - 1} more)')
        self.features = freeze(features)
        self.lins = nn.ParameterList(
            nn.Parameter(torch.ones(1, c, 1, 1), requires_grad=False) for c in self.WIDTHS)
        if lpips_weights is not None:
            lp = unwrap(read_checkpoint(lpips_weights))
            for i, c in enumerate(self.WIDTHS):
                key = f'lin{i}.model.1.weight'
                if key not in lp or lp[key].shape != (1, c, 1, 1):
                    raise KeyError(f'{lpips_weights}: no LPIPS {key} of shape (1, {c}, 1, 1)')
                self.lins[i].data.copy_(lp[key])
        # LPIPS' input scaling of [-1, 1] images.
        self.register_buffer('shift', torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1), False)
        self.register_buffer('scale', torch.tensor([.458, .448, .450]).view(1, 3, 1, 1), False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.features.eval()
        return self

    def _stages(self, x: torch.Tensor) -> List[torch.Tensor]:
        x = ((x * 2 - 1) - self.shift) / self.scale
        out, start = [], 0
        for end in self.STAGE_ENDS:
            x = self.features[start:end](x)
            out.append(x / (x.pow(2).sum(1, keepdim=True).sqrt() + 1e-10))
            start = end
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean distance between images ``x`` and ``y`` in [0, 1]."""
        total = 0.0
        for fx, fy, w in zip(self._stages(x), self._stages(y), self.lins):
            total = total + ((fx - fy).pow(2) * w).sum(1).mean()
        return total


@MODELS.register_module()
class MaskGITVQGAN(BaseModel):
    """MaskGIT-VQGAN: ``encode`` images to code ids, ``decode`` ids to images.

    As a frozen tokenizer it loads the official file (``init_cfg=dict(
    type='Pretrained', checkpoint=...)``, strict). It also trains
    (``mode='loss'``): reconstruction (L1 / L2), codebook and commitment
    losses, an optional perceptual term and, through :meth:`train_step`
    with generator / discriminator optimizers, an optional PatchGAN hinge
    loss from iteration ``disc_start``.

    Args:
        hidden_channels: Base width (128).
        channel_mult: Width multipliers per resolution ((1, 1, 2, 2, 4): f16).
        num_res_blocks: Residual blocks per resolution.
        z_channels: Latent and code width (256).
        num_embeddings: Codebook size (1024).
        num_groups: GroupNorm groups (32).
        dropout: Dropout in the residual blocks (0).
        l1_weight / l2_weight: Weights of the pixel losses.
        codebook_weight: Weight of ``||z_q - sg[z]||^2`` (moves the codes).
        commitment_weight: Weight of ``||sg[z_q] - z||^2`` (the commitment
            cost, 0.25). The official quantizer (taming's legacy one) puts
            0.25 on the codebook term and 1 on the commitment term instead.
        perceptual: Config of a perceptual loss (``VGGPerceptualLoss`` with
            its weight files), or None.
        perceptual_weight: Its weight.
        discriminator: Config of a discriminator (``PatchGANDiscriminator``),
            or None for no adversarial term.
        disc_weight: Weight of the generator's adversarial loss.
        disc_start: Iteration from which the adversarial terms are on.
        restart_dead_codes: Every this many iterations (0: never), codes
            almost unused lately (EMA of counts below 0.03 a batch) are
            moved onto random latents of the batch; at the first iteration
            the whole codebook is set that way (a data-dependent start). Not
            in the official code (which only loads converted weights); it
            keeps a small tokenizer trained from scratch from collapsing to
            a few codes.
        data_preprocessor: Scales pixels to [0, 1] (``mean=0, std=255``).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` for trained weights.
    """

    def __init__(self,
                 hidden_channels: int = 128,
                 channel_mult: Sequence[int] = (1, 1, 2, 2, 4),
                 num_res_blocks: int = 2,
                 z_channels: int = 256,
                 num_embeddings: int = 1024,
                 num_groups: int = 32,
                 dropout: float = 0.0,
                 l1_weight: float = 1.0,
                 l2_weight: float = 0.0,
                 codebook_weight: float = 1.0,
                 commitment_weight: float = 0.25,
                 perceptual: Optional[dict] = None,
                 perceptual_weight: float = 1.0,
                 discriminator: Optional[dict] = None,
                 disc_weight: float = 0.1,
                 disc_start: int = 0,
                 restart_dead_codes: int = 0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        arch = dict(hidden_channels=hidden_channels, channel_mult=tuple(channel_mult),
                    num_res_blocks=num_res_blocks, z_channels=z_channels, dropout=dropout,
                    num_groups=num_groups)
        self.encoder = VQGANEncoder(**arch)
        self.decoder = VQGANDecoder(**arch)
        self.quantize = VectorQuantizer(num_embeddings, z_channels)
        self.num_embeddings = num_embeddings
        self.downsample_factor = 2**(len(channel_mult) - 1)
        self.l1_weight, self.l2_weight = l1_weight, l2_weight
        self.codebook_weight, self.commitment_weight = codebook_weight, commitment_weight
        self.perceptual = MODELS.build(perceptual) if perceptual is not None else None
        self.perceptual_weight = perceptual_weight
        self.discriminator = MODELS.build(discriminator) if discriminator is not None else None
        self.disc_weight, self.disc_start = disc_weight, disc_start
        self.restart_dead_codes = restart_dead_codes
        self.register_buffer('_usage', torch.zeros(num_embeddings), persistent=False)
        # Parts of a training checkpoint that a frozen tokenizer does not build.
        self.checkpoint_ignore = ('discriminator.', 'perceptual.')

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmmim.checkpoint import load_tokenizer
            load_tokenizer(self, cfg['checkpoint'])
            self._is_init = True
        else:
            super().init_weights()

    # -- tokenizer interface ------------------------------------------------------------
    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Code ids ``[B, H/f, W/f]`` of RGB images ``[B, 3, H, W]`` in [0, 1] (fp32)."""
        with torch.autocast(images.device.type, enabled=False):
            return self.quantize.lookup(self.encoder(images.float()))

    @torch.no_grad()
    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, h*f, w*f]`` in [0, 1] of code ids ``[B, h, w]`` (or ``[B, h*w]``, square)."""
        if ids.ndim == 2:
            side = int(round(ids.shape[1]**0.5))
            if side * side != ids.shape[1]:
                raise ValueError(f'{ids.shape[1]} codes per image do not make a square grid; '
                                 'pass ids as [B, h, w]')
            ids = ids.view(ids.shape[0], side, side)
        with torch.autocast(ids.device.type, enabled=False):
            return self.decoder(self.quantize.embed(ids.long())).clamp(0.0, 1.0)

    # -- training -------------------------------------------------------------------------
    @torch.no_grad()
    def _restart_codes(self, z: torch.Tensor) -> None:
        """Move (nearly) unused codes onto random latents of this batch (process 0's)."""
        it = MessageHub.get_current_instance().get_info('iter', 0)
        flat = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1]).float()  # [N, D]
        counts = torch.bincount(self.quantize.lookup(z).flatten(),
                                minlength=self.num_embeddings).float()
        dist.all_reduce(counts)
        self._usage.mul_(0.9).add_(counts, alpha=0.1)
        if it % self.restart_dead_codes and it != 0:
            return
        dead = torch.ones_like(self._usage, dtype=torch.bool) if it == 0 else self._usage < 0.03
        if dead.any():
            new = flat[torch.randint(flat.shape[0], (self.num_embeddings, ), device=z.device)]
            dist.broadcast(new, src=0)
            w = self.quantize.embedding.weight
            w.data[dead] = new[dead].to(w.dtype)
            self._usage[dead] = 1.0

    def _reconstruct(self, x: torch.Tensor):
        """Straight-through reconstruction ``[B, 3, H, W]``, VQ losses and ids."""
        z = self.encoder(x)  # [B, D, h, w]
        if self.training and self.restart_dead_codes:
            self._restart_codes(z.detach())
        ids = self.quantize.lookup(z.detach())
        z_q = self.quantize.embed(ids).to(z.dtype)
        losses = dict(loss_codebook=self.codebook_weight * F.mse_loss(z_q, z.detach()),
                      loss_commit=self.commitment_weight * F.mse_loss(z, z_q.detach()))
        rec = self.decoder(z + (z_q - z).detach())
        return rec, losses, ids

    def _generator_losses(self, x: torch.Tensor, adversarial: bool) -> Dict[str, torch.Tensor]:
        rec, losses, ids = self._reconstruct(x)
        if self.l1_weight:
            losses['loss_l1'] = self.l1_weight * (rec - x).abs().mean()
        if self.l2_weight:
            losses['loss_l2'] = self.l2_weight * F.mse_loss(rec, x)
        if self.perceptual is not None:
            losses['loss_perceptual'] = self.perceptual_weight * self.perceptual(
                rec.float(), x.float())
        if adversarial:
            losses['loss_g_adv'] = -self.disc_weight * self.discriminator(rec).mean()
        used = torch.zeros(self.num_embeddings, device=x.device)
        used[ids.flatten()] = 1
        dist.all_reduce(used)  # codes used by any rank in this batch
        losses['used_codes'] = (used > 0).sum().float()
        return losses, rec

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        return self._generator_losses(x, adversarial=False)[0]

    def _adversarial_on(self) -> bool:
        it = MessageHub.get_current_instance().get_info('iter', 0)
        return self.discriminator is not None and it >= self.disc_start

    def train_step(self, data, optim_wrapper):
        """One step; with a discriminator, ``optim_wrapper`` holds ``generator`` and ``discriminator``."""
        if self.discriminator is None:
            return super().train_step(data, optim_wrapper)
        if not hasattr(optim_wrapper, 'keys') or set(optim_wrapper.keys()) != {
                'generator', 'discriminator'}:
            raise KeyError('MaskGITVQGAN with a discriminator needs optim_wrapper = dict('
                           "constructor='MultiOptimWrapperConstructor', generator=dict(...), "
                           'discriminator=dict(...)) in the config')
        data = self.data_preprocessor(data, True)
        x = data['inputs']
        x = x[0] if isinstance(x, (list, tuple)) else x
        adversarial = self._adversarial_on()
        g_optim, d_optim = optim_wrapper['generator'], optim_wrapper['discriminator']
        with g_optim.optim_context(self):
            self.discriminator.requires_grad_(False)
            losses, rec = self._generator_losses(x, adversarial)
            self.discriminator.requires_grad_(True)
        g_loss, log_vars = self.parse_losses(losses)
        g_optim.update_params(g_loss)
        if adversarial:
            with d_optim.optim_context(self):
                d_loss = hinge_d_loss(self.discriminator(x), self.discriminator(rec.detach()))
            d_optim.update_params(d_loss)
            log_vars['loss_d'] = d_loss.item()
        return log_vars

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """``'loss'`` (training losses) or ``'tensor'`` (code ids ``[B, h, w]``)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            return self.encode(x)
        raise ValueError(f"MaskGITVQGAN supports mode 'loss' or 'tensor', got {mode!r}")


def frozen_tokenizer(cfg: dict) -> MaskGITVQGAN:
    """Build a tokenizer config, load its weights (``init_cfg``) and freeze it."""
    tok = MODELS.build(cfg)
    tok.init_weights()
    return freeze(tok)
