from .pixel_reconstruction_head import PixelReconstructionHead, patchify, unpatchify
from .token_prediction_head import TokenPredictionHead

__all__ = ['PixelReconstructionHead', 'patchify', 'unpatchify', 'TokenPredictionHead']
