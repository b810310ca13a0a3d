"""Data transforms of mmmim."""
import logging
from typing import Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmmim.registry import TRANSFORMS


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImageFromFile):
    """``LoadImageFromFile`` that skips a missing, unreadable or corrupt file.

    The sample is dropped with a warning naming the file (the dataset then
    draws another index), so one bad file cannot end a long run. The warning
    carries the number of files skipped so far by this process (each data
    loader worker counts its own).
    """

    num_skipped = 0

    def transform(self, results: dict):
        try:
            results = super().transform(results)
        except Exception as e:  # decoding errors of cv2 / pillow / turbojpeg, I/O errors
            LoadImageOrSkip.num_skipped += 1
            print_log(f'skipped image {results.get("img_path")}: {type(e).__name__}: {e} '
                      f'({LoadImageOrSkip.num_skipped} skipped so far by this process)',
                      logger='current', level=logging.WARNING)
            return None
        return results


@TRANSFORMS.register_module()
class CheckSegMapSize:
    """Fail with both file names when a label map's size differs from its image's.

    Put it right after ``LoadAnnotations``; without it the mismatch surfaces
    later as a shape error deep in a loss or metric.
    """

    def __call__(self, results: dict) -> dict:
        img_hw = results['img'].shape[:2]
        seg_hw = results['gt_seg_map'].shape[:2]
        if img_hw != seg_hw:
            raise ValueError(f'label map {results.get("seg_map_path")} is {seg_hw[0]}x{seg_hw[1]} '
                             f'but image {results.get("img_path")} is {img_hw[0]}x{img_hw[1]}')
        return results


@TRANSFORMS.register_module()
class RandomResizedCropTwoViews(RandomResizedCrop):
    """One random crop resized twice: the patch view and the tokenizer view.

    BEiT / CAE feed the same crop to the ViT (``scale``, e.g. 224, bicubic)
    and to the tokenizer (``second_scale``, e.g. 112 for DALL-E, lanczos).
    Put a flip before it and both views share it too. Sets ``results['img']``
    to ``[patch_view, tokenizer_view]``; ``PackInputs`` keeps the list.

    Args:
        scale: Patch view size.
        second_scale: Tokenizer view size.
        second_interpolation: Resampling of the tokenizer view.
        **kwargs: ``crop_ratio_range``, ``aspect_ratio_range``,
            ``interpolation``, ``backend`` ... of ``RandomResizedCrop``.
    """

    def __init__(self, scale: Union[int, Sequence[int]], second_scale: Union[int, Sequence[int]],
                 second_interpolation: str = 'lanczos', **kwargs):
        super().__init__(scale, **kwargs)
        self.second_scale = (second_scale, second_scale) if isinstance(second_scale, int) \
            else tuple(second_scale)
        self.second_interpolation = second_interpolation

    def transform(self, results: dict) -> dict:
        img = results['img']
        top, left, h, w = self.rand_crop_params(img)
        crop = mmcv.imcrop(img, np.array([left, top, left + w - 1, top + h - 1]))
        views = [
            mmcv.imresize(crop, tuple(size[::-1]), interpolation=interp, backend=self.backend)
            for size, interp in ((self.scale, self.interpolation),
                                 (self.second_scale, self.second_interpolation))
        ]
        results['img'] = views
        results['img_shape'] = views[0].shape[:2]
        return results
