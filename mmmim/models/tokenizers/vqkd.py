"""VQ-KD (Peng et al., 2022): the visual tokenizer of BEiT v2, trained by distilling a teacher.

Parameter names follow the official checkpoints (``encoder.*``,
``encode_task_layer.*``, ``quantize.embedding.weight``, ``decoder.*``,
``decode_task_layer.*``), up to the official encoder
and decoder keeping their final LayerNorm as ``fc_norm`` where the mmmim ViT
calls it ``norm`` (the checkpoint reader renames it).
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from mmengine import dist
from mmengine.logging import print_log
from mmengine.model import BaseModel
from torch import nn

from mmmim.registry import MODELS
from ..layers import freeze, rescale_block_outputs

# CLIP's pixel statistics (0..255), the teacher normalisation of the paper.
CLIP_MEAN = (122.770938, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.32316305)


def l2norm(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x, p=2, dim=-1)


def kmeans_cosine(x: torch.Tensor, num_clusters: int, num_iters: int = 10):
    """Spherical k-means of ``[N, D]`` unit vectors: centres ``[K, D]`` and cluster sizes ``[K]``."""
    N = x.shape[0]
    idx = torch.randperm(N, device=x.device)[:num_clusters] if N >= num_clusters \
        else torch.randint(0, N, (num_clusters, ), device=x.device)
    means = x[idx]
    for _ in range(num_iters):
        assign = (x @ means.t()).argmax(dim=-1)  # [N]
        bins = torch.bincount(assign, minlength=num_clusters).to(x.dtype)  # [K]
        sums = torch.zeros_like(means).index_add_(0, assign, x)  # [K, D]
        means = torch.where((bins == 0)[:, None], means, l2norm(sums))
    return means, bins


class EmbeddingEMA(nn.Module):
    """The codebook ``weight`` ``[K, D]`` (unit rows), updated by EMA, not by gradients."""

    def __init__(self, num_tokens: int, codebook_dim: int, kmeans_init: bool = True):
        super().__init__()
        weight = torch.zeros(num_tokens, codebook_dim) if kmeans_init \
            else l2norm(torch.randn(num_tokens, codebook_dim))
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.cluster_size = nn.Parameter(torch.zeros(num_tokens), requires_grad=False)
        self.embed_avg = nn.Parameter(weight.clone(), requires_grad=False)
        self.register_buffer('initted', torch.tensor([float(not kmeans_init)]))

    @torch.no_grad()
    def init_embed_(self, z: torch.Tensor) -> None:
        """k-means initialisation on the first batch ``[N, D]`` (process 0's, broadcast)."""
        if self.initted.item():
            return
        print_log(f'initialising the {self.weight.shape[0]}-code codebook by k-means on '
                  f'{z.shape[0]} vectors', logger='current')
        means, bins = kmeans_cosine(z.float(), self.weight.shape[0])
        dist.broadcast(means, src=0)
        dist.broadcast(bins, src=0)
        self.weight.data.copy_(means)
        self.cluster_size.data.copy_(bins)
        self.initted.fill_(1.0)


class NormEMAVectorQuantizer(nn.Module):
    """Nearest unit-norm code of each l2-normalised vector, with an EMA codebook.

    Args:
        num_tokens: Codebook size K (8192).
        codebook_dim: Code width D (32).
        beta: Weight of the commitment loss ``||sg[z_q] - z||^2``.
        decay: EMA decay of the codebook and of the usage statistics.
        kmeans_init: Initialise the codebook by k-means on the first batch.
    """

    def __init__(self, num_tokens: int = 8192, codebook_dim: int = 32, beta: float = 1.0,
                 decay: float = 0.99, kmeans_init: bool = True):
        super().__init__()
        self.num_tokens, self.beta, self.decay = num_tokens, beta, decay
        self.embedding = EmbeddingEMA(num_tokens, codebook_dim, kmeans_init)
        self.register_buffer('cluster_size', torch.zeros(num_tokens))

    def lookup(self, z: torch.Tensor) -> torch.Tensor:
        """Code index ``[N]`` of unit vectors ``[N, D]`` (smallest l2 distance)."""
        w = self.embedding.weight
        d = z.pow(2).sum(1, keepdim=True) + w.pow(2).sum(1) - 2 * z @ w.t()  # [N, K]
        return d.argmin(dim=1)

    @torch.no_grad()
    def ema_update(self, z: torch.Tensor, one_hot: torch.Tensor) -> None:
        """Move each used code toward the normalised mean of its vectors; keep unused ones."""
        bins = one_hot.sum(0)  # [K]
        dist.all_reduce(bins)
        self.cluster_size.mul_(self.decay).add_(bins, alpha=1 - self.decay)
        embed_sum = z.t() @ one_hot  # [D, K]
        dist.all_reduce(embed_sum)
        unused = bins == 0
        mean = l2norm((embed_sum / bins.masked_fill(unused, 1.0)).t())  # [K, D]
        w = self.embedding.weight
        mean = torch.where(unused[:, None], w, mean)
        w.data.mul_(self.decay).add_(mean, alpha=1 - self.decay)
        w.data.copy_(l2norm(w.data))

    def forward(self, z: torch.Tensor):
        """Quantise ``[B, L, D]``: straight-through codes ``[B, L, D]``, commitment loss, indices ``[B, L]``."""
        z = l2norm(z.float())
        flat = z.reshape(-1, z.shape[-1])  # [B*L, D]
        if self.training:
            self.embedding.init_embed_(flat.detach())
        idx = self.lookup(flat)
        z_q = F.embedding(idx, self.embedding.weight).view_as(z)
        if self.training:
            self.ema_update(flat.detach(), F.one_hot(idx, self.num_tokens).to(flat.dtype))
        loss = self.beta * F.mse_loss(z_q.detach(), z)
        z_q = z + (z_q - z).detach()
        return z_q, loss, idx.view(z.shape[:-1])


class ScalingLayer(nn.Module):
    """Maps the tokenizer input (pixels scaled to [-1, 1]) to the teacher's normalisation.

    The buffers hold the teacher's mean / std on [0, 1] pixels, as the
    official ``scaling_layer.shift`` / ``scaling_layer.scale``; they come from
    the config and are not saved.
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer('shift', (torch.tensor(mean) / 255).view(1, -1, 1, 1), False)
        self.register_buffer('scale', (torch.tensor(std) / 255).view(1, -1, 1, 1), False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x + 1) * 127.5).clamp(0, 255) / 255  # back to [0, 1]
        return (x - self.shift) / self.scale


def _task_layer(dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, out_dim))


@MODELS.register_module()
class VQKD(BaseModel):
    """VQ-KD: ViT encoder -> l2-normalised EMA codebook -> ViT decoder that regresses a teacher.

    Trained as a model of its own (``mode='loss'`` needs ``teacher``, which
    is built frozen); inside BEiT v2 it is a frozen tokenizer
    (``get_codebook_indices``). The encoder and decoder blocks start with
    their output projections divided by ``sqrt(2 * layer)``, as the official
    ``fix_init_weight``.
    Inputs are pixels scaled to [-1, 1] (``mean=std=127.5``).

    Args:
        encoder: ViT config of the encoder (``out_type='raw'``).
        decoder: ViT config of the decoder on the code grid (``patch_size=1``,
            ``in_channels`` = code width, ``img_size`` = token grid).
        num_tokens: Codebook size.
        codebook_dim: Code width.
        decay: EMA decay of the codebook.
        beta: Commitment loss weight.
        kmeans_init: k-means initialisation of the codebook on the first batch.
        teacher_dim: Width of the teacher features the decoder regresses.
        teacher: Config of the frozen teacher backbone (any registered ViT
            returning tokens, ``out_type='raw'``, weights through its
            ``init_cfg``); None for a tokenizer that is not trained.
        teacher_mean / teacher_std: The teacher's pixel normalisation (0..255).
        data_preprocessor: Input normalisation (to [-1, 1]).
        init_cfg: ``dict(type='Pretrained', checkpoint=...)`` loads an
            official or mmmim VQ-KD file (the teacher's keys are dropped when
            no teacher is built).
    """

    def __init__(self,
                 encoder: dict,
                 decoder: dict,
                 num_tokens: int = 8192,
                 codebook_dim: int = 32,
                 decay: float = 0.99,
                 beta: float = 1.0,
                 kmeans_init: bool = True,
                 teacher_dim: int = 512,
                 teacher: Optional[dict] = None,
                 teacher_mean: Sequence[float] = CLIP_MEAN,
                 teacher_std: Sequence[float] = CLIP_STD,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.encoder = MODELS.build(encoder)
        self.decoder = MODELS.build(decoder)
        for vit in (self.encoder, self.decoder):  # the official fix_init_weight
            rescale_block_outputs(vit.blocks)
        self.encode_task_layer = _task_layer(self.encoder.embed_dim, codebook_dim)
        self.decode_task_layer = _task_layer(self.decoder.embed_dim, teacher_dim)
        for m in (*self.encode_task_layer, *self.decode_task_layer):
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        self.quantize = NormEMAVectorQuantizer(num_tokens, codebook_dim, beta, decay, kmeans_init)
        self.scaling_layer = ScalingLayer(teacher_mean, teacher_std)
        self.teacher_model = None
        if teacher is not None:
            self.teacher_model = freeze(MODELS.build(teacher))
        self.checkpoint_ignore = ('scaling_layer.', ) if teacher is not None \
            else ('scaling_layer.', 'teacher_model.')

    def init_weights(self):
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmmim.checkpoint import load_tokenizer
            load_tokenizer(self, cfg['checkpoint'])
            self._is_init = True
        else:
            super().init_weights()

    def train(self, mode: bool = True):
        super().train(mode)
        if self.teacher_model is not None:
            self.teacher_model.eval()
        return self

    @staticmethod
    def _patch_tokens(vit: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Last-layer patch tokens ``[B, L, C]`` of a ViT with ``out_type='raw'``."""
        return vit(x)[-1][:, vit.num_extra_tokens:]

    def encode(self, x: torch.Tensor):
        """Images ``[B, 3, H, W]`` to codes ``[B, L, D]``, commitment loss, indices ``[B, L]``."""
        feats = self._patch_tokens(self.encoder, x)  # [B, L, C]
        with torch.autocast(x.device.type, enabled=False):
            z = self.encode_task_layer(feats.float())  # [B, L, D]
        return self.quantize(z)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Codes ``[B, L, D]`` to teacher-feature predictions ``[B, L, teacher_dim]``."""
        B, L, D = z_q.shape
        h, w = self.encoder.grid_size
        grid = z_q.transpose(1, 2).reshape(B, D, h, w)  # [B, D, h, w]
        return self.decode_task_layer(self._patch_tokens(self.decoder, grid))

    @torch.no_grad()
    def get_codebook_indices(self, x: torch.Tensor) -> torch.Tensor:
        """Visual tokens ``[B, L]`` of images in [-1, 1].

        The whole path runs in fp32 outside autocast, so the tokens do not
        depend on the AMP dtype of the model that learns to predict them
        (the official BEiT v2 runs the encoder under fp16 autocast and the
        task layer and quantizer in fp32; bf16 would flip tokens).
        """
        if not self.quantize.embedding.initted.item():
            raise RuntimeError('the VQ-KD codebook was never initialised: load trained tokenizer '
                               "weights (the tokenizer's init_cfg) or set kmeans_init=False")
        with torch.autocast(x.device.type, enabled=False):
            return self.encode(x.float())[2]

    @torch.no_grad()
    def teacher_targets(self, x: torch.Tensor) -> torch.Tensor:
        """The teacher's patch features ``[B, L, teacher_dim]``."""
        target = self._patch_tokens(self.teacher_model, self.scaling_layer(x))
        if target.shape[1] != self.encoder.grid_size[0] * self.encoder.grid_size[1]:
            raise ValueError(f'the teacher gives {target.shape[1]} patch tokens but the tokenizer '
                             f'has a {self.encoder.grid_size} grid: match their patch sizes')
        return target

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        """Cosine distance to the teacher's features plus the commitment loss."""
        if self.teacher_model is None:
            raise RuntimeError('VQKD training needs a teacher: set model.teacher in the config')
        x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        target = self.teacher_targets(x)
        z_q, loss_quant, idx = self.encode(x)
        rec = self.decode(z_q)
        loss_rec = (1 - F.cosine_similarity(rec.float(), target.float(), dim=-1)).mean()
        used = torch.zeros(self.quantize.num_tokens, device=x.device)
        used[idx.flatten()] = 1
        dist.all_reduce(used)
        return dict(loss_rec=loss_rec, loss_quant=loss_quant,
                    used_codes=(used > 0).sum().float())

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """``'loss'`` (training) or ``'tensor'`` (visual tokens ``[B, L]``)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            return self.get_codebook_indices(x)
        raise ValueError(f"VQKD supports mode 'loss' or 'tensor', got {mode!r}")
