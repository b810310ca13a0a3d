"""Small inference helpers: build a model from a config, reconstruct images."""
import os.path as osp
from typing import Optional, Sequence, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config

from mmmim.checkpoint import read_checkpoint, to_mmmim
from mmmim.registry import MODELS


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: str = 'cpu') -> torch.nn.Module:
    """Build ``config``'s model in eval mode, loading ``checkpoint`` if given.

    The checkpoint may be in any layout :func:`mmmim.checkpoint.to_mmmim`
    reads (e.g. the official ``mae_visualize_vit_large.pth``) and must fill
    the whole model.
    """
    cfg = Config.fromfile(config) if isinstance(config, str) else config
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        converted = to_mmmim(read_checkpoint(checkpoint))
        missing, unexpected = model.load_state_dict(converted.state_dict, strict=False)
        if missing or unexpected:
            raise KeyError(f'{checkpoint} ({converted.src_format} layout) does not fit the model '
                           f'of the config: missing {missing or "none"}, unexpected '
                           f'{unexpected or "none"}')
    return model.to(device).eval()


def build_model_of(config: str, model_type: str, cfg_options: Optional[dict] = None):
    """``(cfg, model)`` of ``config`` (with ``cfg_options`` merged), whose model must be
    ``model_type``; a missing file or another model type exits with a message naming it."""
    from mmengine.registry import DefaultScope
    if not osp.isfile(config):
        raise SystemExit(f'config file not found: {config}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.model.get('type') not in (model_type, f'mmmim.{model_type}'):
        raise SystemExit(f'{config}: model.type is {cfg.model.get("type")!r}, not {model_type}')
    with DefaultScope.overwrite_default_scope('mmmim'):
        return cfg, MODELS.build(cfg.model)


def read_image(path: str, size: int) -> np.ndarray:
    """RGB uint8 ``[size, size, 3]``: shorter side resized to ``size``, centre crop."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise OSError(f'cannot read image {path}')
    h, w = img.shape[:2]
    scale = size / min(h, w)
    img = cv2.resize(img, (max(size, round(w * scale)), max(size, round(h * scale))),
                     interpolation=cv2.INTER_CUBIC)
    h, w = img.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return cv2.cvtColor(img[top:top + size, left:left + size], cv2.COLOR_BGR2RGB)


@torch.no_grad()
def reconstruct_images(model, images: Sequence[np.ndarray], seed: int = 0) -> np.ndarray:
    """Rows ``original | masked | reconstruction | reconstruction + visible`` per image.

    Args:
        model: An ``MAE`` with a data preprocessor holding ``mean`` / ``std``.
        images: RGB uint8 arrays of the model's input size.
        seed: Seed of the random masks.

    Returns:
        uint8 RGB grid ``[n * H, 4 * W, 3]``.
    """
    pre = model.data_preprocessor
    device = pre.mean.device
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().to(device)  # [B, 3, H, W]
    x = (x - pre.mean) / pre.std
    p = model.head.patch_size
    L = (x.shape[-2] // p) * (x.shape[-1] // p)
    noise = torch.rand(x.shape[0], L, generator=torch.Generator().manual_seed(seed)).to(device)
    recon, mask = model.reconstruct(x, noise)  # [B, 3, H, W], [B, 1, H, W]
    masked = x * (1 - mask) + mask * ((torch.full_like(x[:, :1], 128.0) - pre.mean) / pre.std)
    pasted = x * (1 - mask) + recon * mask
    grid = torch.cat([x, masked, recon, pasted], dim=-1)  # [B, 3, H, 4W]
    grid = (grid * pre.std + pre.mean).clamp(0, 255).round().byte()
    return grid.permute(0, 2, 3, 1).reshape(-1, grid.shape[-1], 3).cpu().numpy()
