"""The fast training input path: load, random-resized-crop and flip a JPEG in one transform.

``LoadImageFromFile + RandomResizedCrop + RandomFlip`` decodes every image at
full size and resizes the crop with PIL. :class:`RandomResizedCropFromFile`
draws the same crop and flip, then

- reads the image size from the JPEG header and decodes at 1/2, 1/4 or 1/8
  of the size (libjpeg's DCT scaling, through OpenCV) when the crop still
  holds the output size at that scale;
- resizes the crop with torch's antialiased uint8 kernels, which compute
  PIL's bilinear / bicubic filters (96 % of the values equal, 69 dB PSNR on
  average) in a third of the time;
- keeps uint8 throughout: normalisation stays in the data preprocessor.

``docs/benchmarks.md`` has the measurements behind these choices.
"""
from typing import Optional, Sequence, Tuple, Union

import cv2
import mmcv
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmpretrain.datasets.transforms import RandomResizedCrop

from mmmim.registry import TRANSFORMS

from .transforms import LoadImageOrSkip

# start-of-frame markers: SOF0-SOF15 less DHT (C4), JPG (C8) and DAC (CC)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_DECODE_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}


def _exif_orientation(tiff: bytes) -> int:
    """The orientation tag (1 to 8) of an EXIF TIFF block; 1 when absent or unreadable."""
    order = {b'II': 'little', b'MM': 'big'}.get(tiff[:2])
    if order is None or len(tiff) < 8:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        if int.from_bytes(tiff[entry:entry + 2], order) == 0x0112:
            value = int.from_bytes(tiff[entry + 8:entry + 10], order)
            return value if 1 <= value <= 8 else 1
    return 1


def jpeg_size(data: bytes) -> Optional[Tuple[int, int]]:
    """(height, width) of a JPEG as decoders show it (EXIF rotation applied), from its header.

    Reads the markers up to the frame header, without decoding. ``None``
    when ``data`` is not a JPEG or its header is cut short.
    """
    if data[:2] != b'\xff\xd8':
        return None
    pos, orientation = 2, 1
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], 'big')
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            h = int.from_bytes(data[pos + 5:pos + 7], 'big')
            w = int.from_bytes(data[pos + 7:pos + 9], 'big')
            return (w, h) if orientation >= 5 else (h, w)  # 5 to 8 swap the axes
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        if marker == 0xE1 and data[pos + 4:pos + 10] == b'Exif\x00\x00':
            orientation = _exif_orientation(data[pos + 10:pos + 2 + length])
        pos += 2 + length
    return None


def decode_factor(crop_hw: Tuple[int, int], out_hw: Tuple[int, int], max_factor: int = 8) -> int:
    """The largest DCT scaling denominator (1, 2, 4 or 8) that keeps the output size in the crop."""
    for k in (8, 4, 2):
        if k <= max_factor and crop_hw[0] >= k * out_hw[0] and crop_hw[1] >= k * out_hw[1]:
            return k
    return 1


class _ImageSize:
    """Stands in for an image where only its ``shape`` is read (crop sampling)."""

    def __init__(self, h: int, w: int):
        self.shape = (h, w)


class _LoadAndRandomResizedCrop(LoadImageFromFile):
    """The fused load + crop + resize + flip; raises where the file cannot be decoded."""

    def __init__(self,
                 scale: Union[int, Sequence[int]],
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10,
                 interpolation: str = 'bilinear',
                 flip_prob: float = 0.0,
                 max_decode_factor: int = 8,
                 **kwargs):
        super().__init__(**kwargs)
        if self.color_type != 'color' or self.imdecode_backend != 'cv2' or self.to_float32:
            raise ValueError('RandomResizedCropFromFile decodes colour images to uint8 with cv2; '
                             'use LoadImageOrSkip + RandomResizedCrop for other settings')
        if max_decode_factor not in _DECODE_FLAGS:
            raise ValueError(f'max_decode_factor must be one of 1, 2, 4, 8, not {max_decode_factor}')
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f'flip_prob must be in [0, 1], not {flip_prob}')
        # The crop is drawn by mmpretrain's own RandomResizedCrop: the same distribution.
        self.crop = RandomResizedCrop(scale, crop_ratio_range, aspect_ratio_range, max_attempts,
                                      interpolation, backend='pillow')
        self.scale = tuple(self.crop.scale)  # (h, w)
        self.interpolation = interpolation
        self.flip_prob = flip_prob
        self.max_decode_factor = max_decode_factor

    def _read(self, filename: str) -> bytes:
        if self.file_client_args is not None:
            return fileio.FileClient.infer_client(self.file_client_args, filename).get(filename)
        return fileio.get(filename, backend_args=self.backend_args)

    @staticmethod
    def _decode(data: bytes, factor: int, filename: str) -> np.ndarray:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), _DECODE_FLAGS[factor])
        if img is None:  # as LoadImageFromFile fails on what cv2 cannot decode
            raise OSError(f'failed to load image: {filename}')
        return img

    def _resize(self, crop: np.ndarray) -> np.ndarray:
        if self.interpolation in ('bilinear', 'bicubic'):
            # PIL's antialiased filters, computed by torch's uint8 kernels on an HWC view.
            x = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1)[None]  # [1, 3, h, w]
            out = F.interpolate(x, size=self.scale, mode=self.interpolation, antialias=True)
            return out[0].permute(1, 2, 0).numpy()  # [H, W, 3]
        return mmcv.imresize(crop, self.scale[::-1], interpolation=self.interpolation,
                             backend='pillow')

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            data = self._read(filename)
            size = jpeg_size(data)
            img = None
            if size is not None:
                top, left, h, w = self.crop.rand_crop_params(_ImageSize(*size))
                factor = decode_factor((h, w), self.scale, self.max_decode_factor)
                img = self._decode(data, factor, filename)
                if img.shape[:2] != (-(-size[0] // factor), -(-size[1] // factor)):
                    img = None  # the header misled us: decode at full size and draw again
            if img is None:  # not a JPEG (PNG, ...), or an unexpected header
                img = self._decode(data, 1, filename)
                size, factor = img.shape[:2], 1
                top, left, h, w = self.crop.rand_crop_params(img)
        except Exception:
            if self.ignore_empty:
                return None
            raise
        # The crop's edges to the nearest line of the decoded grid, ties to even
        # (unbiased); the crop keeps the output size (to a pixel), as the factor was chosen for.
        y0, x0 = round(top / factor), round(left / factor)
        y1, x1 = round((top + h) / factor), round((left + w) / factor)
        img = self._resize(img[y0:y1, x0:x1])
        flip = bool(self.flip_prob > 0 and np.random.random_sample() < self.flip_prob)  # as RandomFlip
        if flip:
            img = img[:, ::-1]
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = tuple(size)
        results['crop_bbox'] = np.array([x0 * factor, y0 * factor, min(x1 * factor, size[1]),
                                         min(y1 * factor, size[0])])  # x1, y1, x2, y2 (exclusive)
        results['decode_factor'] = factor
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(scale={self.scale}, '
                f'crop_ratio_range={self.crop.crop_ratio_range}, '
                f'aspect_ratio_range={self.crop.aspect_ratio_range}, '
                f'interpolation={self.interpolation!r}, flip_prob={self.flip_prob}, '
                f'max_decode_factor={self.max_decode_factor}, backend_args={self.backend_args})')


@TRANSFORMS.register_module()
class RandomResizedCropFromFile(LoadImageOrSkip, _LoadAndRandomResizedCrop):
    """``LoadImageOrSkip + RandomResizedCrop + RandomFlip`` in one step, decoding less.

    Draws the crop with mmpretrain's ``RandomResizedCrop`` (same scale /
    aspect-ratio sampling, attempts and fallback) from the size in the JPEG
    header, decodes at the smallest DCT scale (1/2, 1/4, 1/8) that still
    holds ``scale`` inside the crop (the crop's edges then move to the
    nearest line of that grid, by at most ``factor / 2`` pixels), resizes with PIL's filter
    (torch's antialiased kernels; other interpolations through PIL itself)
    and flips horizontally with probability ``flip_prob``, drawing from
    ``np.random`` as ``RandomFlip`` does. Other formats than JPEG are decoded
    at full size. A file that cannot be read or decoded is skipped and
    counted exactly as by :class:`LoadImageOrSkip`.

    Sets ``img`` (uint8 BGR, ``scale``), ``img_shape``, ``ori_shape``,
    ``crop_bbox`` (x1, y1, x2, y2 in the original, exclusive), ``flip``,
    ``flip_direction`` and ``decode_factor``.

    Args:
        scale: Output size, int or (h, w).
        crop_ratio_range: Range of the crop's area over the image's.
        aspect_ratio_range: Range of the crop's aspect ratio.
        max_attempts: Draws before falling back to a central crop.
        interpolation: 'bilinear', 'bicubic' (fast path), or 'nearest',
            'area', 'lanczos' (PIL).
        flip_prob: Probability of a horizontal flip.
        max_decode_factor: Largest DCT scaling denominator; 1 decodes every
            image at full size.
        **kwargs: ``backend_args``, ``ignore_empty`` of ``LoadImageFromFile``.
    """

    def __init__(self, scale: Union[int, Sequence[int]], **kwargs):
        super().__init__(scale=scale, **kwargs)
