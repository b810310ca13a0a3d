"""Data transforms of mmmim."""
import logging

from mmcv.transforms import LoadImageFromFile
from mmengine.logging import print_log

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
