"""Data preprocessor for the two views of BEiT / CAE."""
from typing import Optional, Sequence

import torch
from mmpretrain.models.utils import SelfSupDataPreprocessor

from mmmim.registry import MODELS

# The DALL-E dVAE's input mapping x -> (1 - 2 * 0.1) * x / 255 + 0.1, written
# as a normalisation (x - mean) / std of 0..255 pixels.
DALLE_MEAN = (-31.875, -31.875, -31.875)
DALLE_STD = (318.75, 318.75, 318.75)


@MODELS.register_module()
class TwoViewDataPreprocessor(SelfSupDataPreprocessor):
    """Normalise the patch view with ``mean`` / ``std`` and the tokenizer view
    with ``target_mean`` / ``target_std`` (default: DALL-E's input mapping).

    Inputs come as ``[patch_views, tokenizer_views]`` (``default_collate`` of
    :class:`RandomResizedCropTwoViews` output), each ``[B, 3, H, W]`` uint8;
    the result keeps that order, float.
    """

    def __init__(self,
                 mean: Sequence[float],
                 std: Sequence[float],
                 target_mean: Optional[Sequence[float]] = DALLE_MEAN,
                 target_std: Optional[Sequence[float]] = DALLE_STD,
                 **kwargs):
        super().__init__(mean=mean, std=std, **kwargs)
        self.register_buffer('target_mean', torch.tensor(target_mean).view(-1, 1, 1), False)
        self.register_buffer('target_std', torch.tensor(target_std).view(-1, 1, 1), False)

    def forward(self, data: dict, training: bool = False) -> dict:
        batch_inputs, data_samples = self.cast_data([data['inputs'], data.get('data_samples')])
        if not (isinstance(batch_inputs, (list, tuple)) and len(batch_inputs) == 2):
            raise ValueError('TwoViewDataPreprocessor expects two views per image '
                             '(a patch view and a tokenizer view, e.g. from RandomResizedCropTwoViews)')
        if self._channel_conversion:
            batch_inputs = [x[:, [2, 1, 0]] for x in batch_inputs]
        patch_view, target_view = (x.float() for x in batch_inputs)
        patch_view = (patch_view - self.mean) / self.std
        target_view = (target_view - self.target_mean) / self.target_std
        return {'inputs': [patch_view, target_view], 'data_samples': data_samples}
