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
