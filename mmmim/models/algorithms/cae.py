"""Context Autoencoder (Chen et al., 2023)."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from mmmim.registry import MODELS
from ..layers import eval_mode
from .base import BaseMIM


@MODELS.register_module()
class CAE(BaseMIM):
    """CAE: encode the visible patches, regress the latents of the masked ones, decode tokens.

    Losses: cross-entropy between the decoder's token logits and the DALL-E
    tokens of the masked patches, plus ``align_weight`` x MSE between the
    regressed latents and the target latents. The target encoder is the
    encoder itself, run without gradients on the masked patches with the
    current weights (stop-gradient weight sharing, the paper's choice and
    the current official code; no momentum, no second copy of the weights).
    That pass runs in eval mode: a target network is frozen and in eval mode
    (the official copy runs in the model's train mode, with stochastic depth).

    Args:
        backbone: ``CAEViT`` config.
        neck: ``CAENeck`` config (regressor and decoder).
        head: ``TokenPredictionHead`` config.
        tokenizer: ``DALLEEncoder`` config with its weights; built frozen.
        align_weight: Weight of the alignment loss (2).
        data_preprocessor: Normalisation of the two views.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 tokenizer: dict,
                 align_weight: float = 2.0,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone, data_preprocessor, init_cfg)
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)
        nn.init.xavier_uniform_(self.head.lm_head.weight)  # CAE: every linear layer xavier
        self.build_target('tokenizer', tokenizer)
        self.align_weight = align_weight

    @torch.no_grad()
    def target_latents(self, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The target encoder's latents of the masked patches ``[B, Nm, C]``.

        The encoder itself with its current weights, without gradients and in
        eval mode (no stochastic depth), whatever the algorithm's mode.
        """
        with eval_mode(self.backbone):
            return self.backbone.forward_subset(imgs, mask)[:, self.backbone.num_extra_tokens:]

    def loss(self, inputs, data_samples=None) -> Dict[str, torch.Tensor]:
        imgs, token_view = inputs
        mask = self._masks(data_samples, imgs.device)  # [B, L]
        B = mask.shape[0]
        counts = mask.sum(1)
        if not bool((counts == counts[0]).all()):
            raise ValueError(f'CAE needs the same number of masked patches in every image, got '
                             f'{counts.tolist()}: use BlockwiseMaskGenerator (exact counts)')
        target = self._check_tokens(self.tokenizer.get_codebook_indices(token_view), mask)  # [B, L]
        n = self.backbone.num_extra_tokens
        latent_visible = self.backbone.forward_subset(imgs, ~mask)[:, n:]  # [B, Nv, C]
        latent_target = self.target_latents(imgs, mask)  # [B, Nm, C]
        grid = (imgs.shape[-2] // self.backbone.patch_size, imgs.shape[-1] // self.backbone.patch_size)
        pos = self.backbone.pos_embed_for(grid)[:, n:].expand(B, -1, -1)  # [B, L, C]
        C = pos.shape[-1]
        latent_pred, feats = self.neck(latent_visible, pos[~mask].view(B, -1, C),
                                       pos[mask].view(B, -1, C))
        mim = self.head.loss(self.head(feats).flatten(0, 1), target[mask])
        loss_align = F.mse_loss(latent_pred.float(), latent_target.float())
        return dict(loss_mim=mim['loss'], loss_align=self.align_weight * loss_align,
                    mim_acc=mim['acc'])
