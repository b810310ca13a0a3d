"""RAR (Yu et al., 2024): randomized autoregressive modeling of VQ tokens, trained with MMEngine."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel

from mmmim.registry import MODELS
from ..layers import freeze


@MODELS.register_module()
class RAR(BaseModel):
    """A :class:`RARTransformer` trained on pre-tokenised images, and its tokenizer for sampling.

    Each training sample is seen in a random order (``torch.randperm``) with
    probability ``random_ratio`` and in raster order otherwise;
    ``RandomnessAnnealingHook`` sets ``random_ratio`` every iteration. Class
    labels are replaced by the null class with probability
    ``class_label_dropout``. The loss is the cross-entropy of each position's
    logits against the next token of the (permuted) sequence.

    Inputs: ``inputs`` token ids ``[B, L]`` (raster order) and
    ``data_samples['gt_label']`` ``[B]`` (as ``TokenDataset`` gives them).

    Args:
        generator: ``RARTransformer`` config.
        tokenizer: Config of the frozen tokenizer that decodes samples
            (``MaskGITVQGAN`` with its weights in ``init_cfg``), or None.
        class_label_dropout: Probability of the null class in training (0.1).
        random_ratio: Initial permutation probability r (the hook sets it).
        sampling: Default ``guidance_scale``, ``guidance_scale_pow``,
            ``temperature`` of :meth:`generate`.
    """

    def __init__(self,
                 generator: dict,
                 tokenizer: Optional[dict] = None,
                 class_label_dropout: float = 0.1,
                 random_ratio: float = 0.0,
                 sampling: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.generator = MODELS.build(generator)
        self.tokenizer = freeze(MODELS.build(tokenizer)) if tokenizer is not None else None
        self.class_label_dropout = class_label_dropout
        self.random_ratio = random_ratio
        self.sampling = dict(guidance_scale=16.0, guidance_scale_pow=2.75, temperature=1.0)
        self.sampling.update(sampling or {})

    def init_weights(self):
        super().init_weights()
        if self.tokenizer is not None:
            freeze(self.tokenizer)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.tokenizer is not None:
            self.tokenizer.eval()
        return self

    @staticmethod
    def _labels(data_samples) -> torch.Tensor:
        if isinstance(data_samples, dict) and 'gt_label' in data_samples:
            return torch.as_tensor(data_samples['gt_label']).flatten()
        if isinstance(data_samples, (list, tuple)) and data_samples and hasattr(data_samples[0],
                                                                                'gt_label'):
            return torch.cat([s.gt_label for s in data_samples])
        raise KeyError('RAR needs class labels: data_samples must carry gt_label (use '
                       'TokenDataset)')

    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        ids = inputs.long()  # [B, L]
        labels = self._labels(data_samples).to(ids.device)
        gen = self.generator
        cond = gen.condition_ids(labels, self.class_label_dropout if self.training else 0.0)
        orders = gen.sample_orders(ids.shape[0], self.random_ratio, ids.device)
        logits, targets = gen(ids, cond, orders)  # [B, L + 1, K], [B, L]
        logits = logits[:, :-1].float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        acc = (logits.argmax(-1) == targets).float().mean()
        return dict(loss=loss, token_acc=acc)

    @torch.no_grad()
    def generate(self, labels: torch.Tensor, use_cache: bool = True,
                 generator: Optional[torch.Generator] = None, progress=None,
                 **sampling) -> torch.Tensor:
        """Token grids ``[B, h, w]`` for class ``labels`` ``[B]``; ``sampling`` overrides
        :attr:`sampling` (``guidance_scale``, ``guidance_scale_pow``, ``temperature``)."""
        unknown = set(sampling) - set(self.sampling)
        if unknown:
            raise KeyError(f'unknown sampling options {sorted(unknown)}; use {sorted(self.sampling)}')
        opts = dict(self.sampling, **{k: v for k, v in sampling.items() if v is not None})
        ids = self.generator.generate(labels, use_cache=use_cache, generator=generator,
                                      progress=progress, **opts)
        side = int(round(ids.shape[1]**0.5))
        return ids.view(ids.shape[0], side, side) if side * side == ids.shape[1] else ids

    @torch.no_grad()
    def decode(self, ids: torch.Tensor) -> torch.Tensor:
        """Images ``[B, 3, H, W]`` in [0, 1] of token grids, through the tokenizer."""
        if self.tokenizer is None:
            raise RuntimeError('RAR has no tokenizer to decode tokens: set model.tokenizer')
        return self.tokenizer.decode(ids)

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """``'loss'`` (training) or ``'tensor'`` (logits ``[B, L + 1, K]`` in raster order)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            ids = inputs.long()
            cond = self.generator.condition_ids(self._labels(data_samples).to(ids.device))
            return self.generator(ids, cond)[0]
        raise ValueError(f"RAR supports mode 'loss' or 'tensor', got {mode!r}")
