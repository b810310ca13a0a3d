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
        tokenizer: Frozen tokenizer config (``DALLEEncoder`` with its weights).
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
        self.tokenizer = MODELS.build(tokenizer)

    def targets(self, inputs) -> torch.Tensor:
        """Visual tokens ``[B, L]`` of the tokenizer view."""
        return self.tokenizer.get_codebook_indices(inputs[1])

    def checked_targets(self, inputs, mask: torch.Tensor) -> torch.Tensor:
        """``targets``, with a clear error when there is not one token per patch."""
        target = self.targets(inputs)
        if target.shape != mask.shape:
            raise ValueError(f'the tokenizer gives {target.shape[1]} tokens per image but the '
                             f'backbone sees {mask.shape[1]} patches: match the tokenizer view '
                             'size (second_scale) to the patch grid')
        return target

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        imgs = inputs[0]
        mask = self._masks(data_samples, imgs.device)  # [B, L]
        target = self.checked_targets(inputs, mask)  # [B, L]
        x = self.backbone.forward_masked(imgs, mask)[-1]  # [B, 1 + L, C]
        x = x[:, self.backbone.num_extra_tokens:][mask]  # [M, C]
        out = self.head.loss(self.head(x), target[mask])
        return dict(loss=out['loss'], mim_acc=out['acc'])
