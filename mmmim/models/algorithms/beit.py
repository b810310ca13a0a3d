"""BEiT (Bao et al., 2022) and BEiT v2 (Peng et al., 2022): masked visual-token prediction."""
from typing import Dict, Optional

import torch

from mmmim.registry import MODELS
from .base import BaseMIM


@MODELS.register_module()
class BEiT(BaseMIM):
    """BEiT v1: classify each masked patch into the DALL-E token of its tokenizer view.

    Inputs are ``[patch_view, tokenizer_view]`` (``TwoViewDataPreprocessor``)
    and each data sample carries a block mask (``BlockwiseMaskGenerator``).
    The loss is the cross-entropy over masked positions only.

    Args:
        backbone: ``BEiTViT`` config.
        head: ``TokenPredictionHead`` config.
        tokenizer: Tokenizer config (``DALLEEncoder`` with its weights); built frozen.
        data_preprocessor: Normalisation of the two views.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 backbone: dict,
                 head: dict,
                 tokenizer: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone, data_preprocessor, init_cfg)
        self.head = MODELS.build(head)
        self.build_target('tokenizer', tokenizer)

    def targets(self, inputs) -> torch.Tensor:
        """Visual tokens ``[B, L]`` of the tokenizer view (fp32, outside autocast)."""
        return self.tokenizer.get_codebook_indices(inputs[1])

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        imgs = inputs[0]
        mask = self._masks(data_samples, imgs.device)  # [B, L]
        target = self._check_tokens(self.targets(inputs), mask)  # [B, L]
        x = self.backbone.forward_masked(imgs, mask)[-1]  # [B, 1 + L, C]
        x = x[:, self.backbone.num_extra_tokens:][mask]  # [M, C]
        out = self.head.loss(self.head(x), target[mask])
        return dict(loss=out['loss'], mim_acc=out['acc'])


@MODELS.register_module()
class BEiTv2(BEiT):
    """BEiT v2: masked VQ-KD token prediction from the last layer and, through
    the CLS neck, from the last class token over early-layer patch tokens.

    The backbone returns the early and the last layer (``out_indices=[early
    - 1, depth - 1]``); both branches go through the backbone's final norm
    and the one shared head. Loss = MIM + CLS-MIM cross-entropy on masked
    positions.

    Args:
        backbone: ``BEiTViT`` config with two ``out_indices``.
        neck: ``BEiTV2Neck`` config.
        head: ``TokenPredictionHead`` config (shared by both branches).
        tokenizer: ``VQKD`` config with its weights; built frozen, so its EMA
            codebook never moves.
        data_preprocessor: Normalisation of the two views (tokenizer view to [-1, 1]).
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 tokenizer: dict,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone, head, tokenizer, data_preprocessor, init_cfg)
        self.neck = MODELS.build(neck)
        depth = self.backbone.depth
        expected = [self.neck.early_layers - 1, depth - 1]
        if self.backbone.out_indices != expected:
            raise ValueError(f'BEiTv2 needs backbone.out_indices={expected} (the early layer '
                             f'{self.neck.early_layers} and the last), got {self.backbone.out_indices}')

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        imgs = inputs[0]
        mask = self._masks(data_samples, imgs.device)  # [B, L]
        target = self._check_tokens(self.targets(inputs), mask)[mask]  # [M]
        early, last = self.backbone.forward_masked(imgs, mask, final_norm=False)  # [B, 1 + L, C]
        grid = (imgs.shape[-2] // self.backbone.patch_size, imgs.shape[-1] // self.backbone.patch_size)
        rel_pos_bias = None if self.backbone.rel_pos_bias is None else self.backbone.rel_pos_bias(grid)
        cls_pt = self.neck(last, early, rel_pos_bias, grid)  # [B, 1 + L, C]
        norm = self.backbone.norm
        n = self.backbone.num_extra_tokens
        mim = self.head.loss(self.head(norm(last)[:, n:][mask]), target)
        cls_mim = self.head.loss(self.head(norm(cls_pt)[:, n:][mask]), target)
        return dict(loss_mim=mim['loss'], loss_cls_pt=cls_mim['loss'], mim_acc=mim['acc'],
                    cls_pt_acc=cls_mim['acc'])
