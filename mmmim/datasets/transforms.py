"""Data transforms of mmmim."""
import logging
import multiprocessing
from typing import Sequence, Union

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmmim.registry import TRANSFORMS


class _SharedCounter:
    """An integer in shared memory that data loader workers (forked or spawned) add to."""

    def __init__(self):
        self._value = multiprocessing.Value('q', 0)

    def add(self, n: int = 1) -> int:
        with self._value.get_lock():
            self._value.value += n
            return self._value.value

    @property
    def value(self) -> int:
        return self._value.value

    def __deepcopy__(self, memo):
        return self  # a copied dataset counts into the same total


_skipped = None  # the _SharedCounter of this process, made with the first LoadImageOrSkip


@TRANSFORMS.register_module()
class LoadImageOrSkip(LoadImageFromFile):
    """``LoadImageFromFile`` that skips a missing, unreadable or corrupt file.

    The sample is dropped with a warning naming the file (the dataset then
    draws another index), so one bad file cannot end a long run. Skips are
    counted in shared memory over this process and its data loader workers
    (:meth:`num_skipped`); ``SkippedImagesHook`` sums the counts of all ranks
    into the training log.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        global _skipped
        if _skipped is None:
            _skipped = _SharedCounter()
        self._skipped = _skipped  # travels to spawned workers with the dataset

    @staticmethod
    def num_skipped() -> int:
        """Images skipped so far by this process and its data loader workers."""
        return _skipped.value if _skipped else 0

    def transform(self, results: dict):
        try:
            results = super().transform(results)
        except Exception as e:  # decoding errors of cv2 / pillow / turbojpeg, I/O errors
            total = self._skipped.add()
            print_log(f'skipped image {results.get("img_path")}: {type(e).__name__}: {e} '
                      f'({total} skipped so far on this rank)',
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
