from .dalle import DALLEEncoder
from .vqkd import VQKD, NormEMAVectorQuantizer

__all__ = ['DALLEEncoder', 'VQKD', 'NormEMAVectorQuantizer']
from .maskgit_vqgan import MaskGITVQGAN, PatchGANDiscriminator, VGGPerceptualLoss

__all__ += ['MaskGITVQGAN', 'PatchGANDiscriminator', 'VGGPerceptualLoss']
from .vae import VAE

__all__ += ['VAE']
