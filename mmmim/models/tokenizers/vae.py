"""A frozen latent VAE: ``diffusers``' ``AutoencoderKL``, weights from a file or folder you name.

Images in [-1, 1] map to latents ``scaling_factor * z`` (``z`` sampled from,
or the mean of, the encoder's Gaussian) and back. Nothing downloads.
"""
import json
import os.path as osp
from typing import Optional, Union

import torch
from mmengine.logging import print_log
from torch import nn

from mmmim.registry import MODELS
from ..layers import freeze

WEIGHT_FILES = ('diffusion_pytorch_model.safetensors', 'diffusion_pytorch_model.bin')


def _read_config(config: Union[dict, str]) -> dict:
    if isinstance(config, dict):
        return dict(config)
    path = osp.join(config, 'config.json') if osp.isdir(config) else config
    if not osp.isfile(path):
        raise FileNotFoundError(f'VAE config: {path} does not exist (give an AutoencoderKL config '
                                'dict, its config.json, or the folder holding it)')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


@MODELS.register_module()
class VAE(nn.Module):
    """``AutoencoderKL`` for latent diffusion, frozen and in eval mode.

    Args:
        config: The ``AutoencoderKL`` config (a dict, a ``config.json`` or a
            diffusers folder, e.g. a local copy of an SD / SDXL VAE).
        checkpoint: Weights: a ``.safetensors`` / ``.bin`` / ``.pth`` file, or a
            diffusers folder holding ``diffusion_pytorch_model.*``; loaded
            strictly. None leaves the random initialisation (tests).
        scaling_factor: Latent scale; default: the config's ``scaling_factor``.
        sample: Encode to a sample of the posterior (as diffusers' training
            scripts) instead of its mean.
    """

    def __init__(self, config: Union[dict, str], checkpoint: Optional[str] = None,
                 scaling_factor: Optional[float] = None, sample: bool = True):
        super().__init__()
        from diffusers import AutoencoderKL
        self.vae = AutoencoderKL.from_config(_read_config(config))
        self.scaling_factor = float(scaling_factor if scaling_factor is not None
                                    else self.vae.config.scaling_factor)
        self.sample = sample
        self.latent_channels = self.vae.config.latent_channels
        self.downsample = 2**(len(self.vae.config.block_out_channels) - 1)
        if checkpoint is not None:
            self.load(checkpoint)
        freeze(self)

    def load(self, checkpoint: str) -> None:
        """Load ``checkpoint`` (file or diffusers folder) strictly, naming what does not fit."""
        from mmmim.checkpoint import read_checkpoint, unwrap
        path = checkpoint
        if osp.isdir(checkpoint):
            found = [osp.join(checkpoint, f) for f in WEIGHT_FILES
                     if osp.isfile(osp.join(checkpoint, f))]
            if not found:
                raise FileNotFoundError(f'VAE weights: the folder {checkpoint} holds none of '
                                        f'{", ".join(WEIGHT_FILES)}')
            path = found[0]
        sd = unwrap(read_checkpoint(path))
        for prefix in ('vae.', 'model.'):
            if sd and all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
        target = set(self.vae.state_dict())
        missing, unexpected = sorted(target - set(sd)), sorted(set(sd) - target)
        if missing or unexpected:
            raise KeyError(f'{path} does not fit the AutoencoderKL config: missing '
                           f'{missing[:8] or "none"}, unexpected {unexpected[:8] or "none"}')
        self.vae.load_state_dict(sd, strict=True)
        print_log(f'VAE: loaded {len(sd)} tensors from {path}', logger='current')

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: always eval

    @torch.no_grad()
    def encode(self, images: torch.Tensor, generator: Optional[torch.Generator] = None):
        """Images ``[B, 3, H, W]`` in [-1, 1] -> scaled latents ``[B, C, H/f, W/f]`` (fp32)."""
        posterior = self.vae.encode(images.float()).latent_dist
        z = posterior.sample(generator) if self.sample else posterior.mode()
        return z * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> images ``[B, 3, H, W]`` in [-1, 1] (not clamped)."""
        return self.vae.decode(latents.float() / self.scaling_factor).sample
