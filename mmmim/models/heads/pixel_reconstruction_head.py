"""Pixel reconstruction target and loss of MAE."""
from typing import Tuple

import torch
from mmengine.model import BaseModule

from mmmim.registry import MODELS


def patchify(imgs: torch.Tensor, p: int) -> torch.Tensor:
    """Images ``[B, C, H, W]`` to patches ``[B, h*w, p*p*C]`` (pixel-major, channel last)."""
    B, C, H, W = imgs.shape
    h, w = H // p, W // p
    x = imgs.reshape(B, C, h, p, w, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(B, h * w, p * p * C)


def unpatchify(x: torch.Tensor, p: int, grid: Tuple[int, int], channels: int = 3) -> torch.Tensor:
    """Patches ``[B, h*w, p*p*C]`` back to images ``[B, C, h*p, w*p]``."""
    B = x.shape[0]
    h, w = grid
    x = x.reshape(B, h, w, p, p, channels)
    return x.permute(0, 5, 1, 3, 2, 4).reshape(B, channels, h * p, w * p)


@MODELS.register_module()
class PixelReconstructionHead(BaseModule):
    """Mean squared error on the pixels of masked patches.

    Args:
        patch_size: Patch side in pixels.
        norm_pix: Regress per-patch normalised pixels (MAE's ``norm_pix_loss``):
            each target patch minus its mean, divided by ``sqrt(var + 1e-6)``.
    """

    def __init__(self, patch_size: int = 16, norm_pix: bool = True, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.patch_size = patch_size
        self.norm_pix = norm_pix

    def target(self, imgs: torch.Tensor) -> torch.Tensor:
        """Regression target ``[B, L, p*p*3]``."""
        target = patchify(imgs, self.patch_size)
        if self.norm_pix:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)  # unbiased, as the official code
            target = (target - mean) / (var + 1e-6)**0.5
        return target

    def loss(self, pred: torch.Tensor, imgs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``pred`` ``[B, L, p*p*3]``, ``imgs`` ``[B, 3, H, W]``, ``mask`` ``[B, L]`` (1 = masked)."""
        loss = (pred.float() - self.target(imgs).float())**2
        loss = loss.mean(dim=-1)  # [B, L], per-patch error
        return (loss * mask).sum() / mask.sum()

    def to_pixels(self, pred: torch.Tensor, imgs: torch.Tensor) -> torch.Tensor:
        """Prediction ``[B, L, p*p*3]`` to the input's pixel space ``[B, 3, H, W]``.

        With ``norm_pix`` the prediction is de-normalised with each patch's
        own mean and variance, taken from the input (for visualisation only).
        """
        if self.norm_pix:
            target = patchify(imgs, self.patch_size)
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            pred = pred * (var + 1e-6)**0.5 + mean
        p = self.patch_size
        return unpatchify(pred, p, (imgs.shape[-2] // p, imgs.shape[-1] // p), imgs.shape[1])
