"""Block-wise masking of BEiT (Bao et al., 2022), used by BEiT v1 / v2 and CAE."""
import math
import random
from typing import Optional, Tuple, Union

import numpy as np

from mmmim.registry import TRANSFORMS


@TRANSFORMS.register_module()
class BlockwiseMaskGenerator:
    """Mask ``num_masking_patches`` patches of a grid in random rectangular blocks.

    Blocks are drawn as in BEiT: area uniform in ``[min_num_patches,
    max_num_patches]`` (capped by what is left to mask), log-uniform aspect
    ratio in ``[min_aspect, 1 / min_aspect]``, random position; a block adds
    only its not-yet-masked patches. The official loop stops when no block
    fits what is left, which at BEiT's settings leaves about a third of the
    masks 1-2 patches short. Here the count is always exact: the rest is
    grown one patch at a time from the border of the masked area (counted in
    ``num_topped_up``), so masks stay blocky and algorithms that gather
    visible tokens (CAE) can batch them.

    Adds ``results['mask']``: a bool array ``[h, w]``, True = masked.
    ``PackInputs`` puts it in the data sample as ``mask``.

    Args:
        input_size: Patch grid ``(h, w)`` or its side.
        num_masking_patches: Patches masked per image (75 of 196 for BEiT, 98 for CAE).
        min_num_patches: Smallest block area.
        max_num_patches: Largest block area (None: no cap).
        min_aspect: Smallest aspect ratio; the largest is its inverse.
        max_attempts: Tries to place one block before giving up on blocks.
    """

    num_topped_up = 0

    def __init__(self,
                 input_size: Union[int, Tuple[int, int]] = 14,
                 num_masking_patches: int = 75,
                 min_num_patches: int = 16,
                 max_num_patches: Optional[int] = None,
                 min_aspect: float = 0.3,
                 max_attempts: int = 10):
        self.height, self.width = (input_size, input_size) if isinstance(input_size, int) \
            else tuple(input_size)
        num_patches = self.height * self.width
        if not 0 < num_masking_patches <= num_patches:
            raise ValueError(f'num_masking_patches must be in (0, {num_patches}] for a '
                             f'{self.height}x{self.width} grid, got {num_masking_patches}')
        if not 0 < min_aspect <= 1:
            raise ValueError(f'min_aspect must be in (0, 1], got {min_aspect}')
        self.num_masking_patches = num_masking_patches
        self.min_num_patches = min_num_patches
        self.max_num_patches = num_masking_patches if max_num_patches is None else max_num_patches
        self.log_aspect_ratio = (math.log(min_aspect), math.log(1 / min_aspect))
        self.max_attempts = max_attempts

    def _add_block(self, mask: np.ndarray, max_mask_patches: int) -> int:
        """Mask one random block of at most ``max_mask_patches`` new patches; return how many."""
        for _ in range(self.max_attempts):
            target_area = random.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(random.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if not (0 < h < self.height and 0 < w < self.width):
                continue
            top = random.randint(0, self.height - h)
            left = random.randint(0, self.width - w)
            block = mask[top:top + h, left:left + w]
            new = h * w - int(block.sum())
            if 0 < new <= max_mask_patches:
                block[:] = True
                return new
        return 0

    @staticmethod
    def _grow(mask: np.ndarray) -> None:
        """Mask one random unmasked patch next to a masked one (any one if none is masked)."""
        padded = np.pad(mask, 1)
        border = ~mask & (padded[:-2, 1:-1] | padded[2:, 1:-1] | padded[1:-1, :-2] | padded[1:-1, 2:])
        candidates = np.flatnonzero(border if border.any() else ~mask)
        mask.flat[candidates[random.randrange(len(candidates))]] = True

    def __call__(self, results: dict) -> dict:
        mask = np.zeros((self.height, self.width), dtype=bool)
        count = 0
        while count < self.num_masking_patches:
            left = min(self.num_masking_patches - count, self.max_num_patches)
            added = self._add_block(mask, left)
            if added == 0:
                break
            count += added
        if count < self.num_masking_patches:
            BlockwiseMaskGenerator.num_topped_up += 1
        for _ in range(self.num_masking_patches - count):
            self._grow(mask)
        results['mask'] = mask
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(input_size={(self.height, self.width)}, '
                f'num_masking_patches={self.num_masking_patches}, '
                f'min_num_patches={self.min_num_patches}, max_num_patches={self.max_num_patches})')
