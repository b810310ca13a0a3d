from .pixel_reconstruction_head import PixelReconstructionHead, patchify, unpatchify

__all__ = ['PixelReconstructionHead', 'patchify', 'unpatchify']
