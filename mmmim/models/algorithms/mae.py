"""Masked Autoencoders (He et al., 2022)."""
from typing import Dict, List, Optional

import torch
from mmengine.structures import BaseDataElement

from mmmim.registry import MODELS
from .base import BaseMIM


@MODELS.register_module()
class MAE(BaseMIM):
    """MAE: encode the visible patches, decode all, regress masked pixels.

    Args:
        backbone: Encoder config (``MAEViT``).
        neck: Decoder config (``MAEDecoder``).
        head: Loss config (``PixelReconstructionHead``).
        mask_ratio: Fraction of patches removed per image (0.75).
        data_preprocessor: Normalisation of the input batch.
        init_cfg: MMEngine init config.
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 mask_ratio: float = 0.75,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        super().__init__(backbone, data_preprocessor, init_cfg)
        if not 0.0 <= mask_ratio < 1.0:
            raise ValueError(f'mask_ratio must be in [0, 1), got {mask_ratio}')
        self.neck = MODELS.build(neck)
        self.head = MODELS.build(head)
        self.mask_ratio = mask_ratio

    def forward_train(self, imgs: torch.Tensor, noise: Optional[torch.Tensor] = None):
        """Predicted patches ``[B, L, p*p*3]`` and the mask ``[B, L]``."""
        latent, mask, ids_restore = self.backbone.forward_masked(imgs, self.mask_ratio, noise)
        return self.neck(latent, ids_restore), mask

    def loss(self, inputs, data_samples=None, noise: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Masked-patch MSE. ``noise`` ``[B, L]`` fixes the masking (tests)."""
        imgs = self._images(inputs)
        pred, mask = self.forward_train(imgs, noise)
        return dict(loss=self.head.loss(pred, imgs, mask))

    @torch.no_grad()
    def reconstruct(self, imgs: torch.Tensor, noise: Optional[torch.Tensor] = None):
        """Reconstruction ``[B, 3, H, W]`` and pixel mask ``[B, 1, H, W]`` (1 = masked).

        Both are in the space of ``imgs`` (the normalised input).
        """
        pred, mask = self.forward_train(imgs, noise)
        recon = self.head.to_pixels(pred, imgs)
        p = self.head.patch_size
        h, w = imgs.shape[-2] // p, imgs.shape[-1] // p
        mask_img = mask.view(-1, 1, h, 1, w, 1).expand(-1, -1, -1, p, -1, p)
        return recon, mask_img.reshape(-1, 1, h * p, w * p)

    def predict(self, inputs, data_samples=None) -> List[BaseDataElement]:
        """One data sample per image with ``reconstruction`` and ``mask`` fields."""
        recon, mask = self.reconstruct(self._images(inputs))
        data_samples = data_samples or [BaseDataElement() for _ in range(recon.shape[0])]
        for sample, r, m in zip(data_samples, recon, mask):
            sample.set_field(r, 'reconstruction')
            sample.set_field(m, 'mask')
        return data_samples
