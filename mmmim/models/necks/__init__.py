from .feature_pyramid import FeaturePyramid
from .mae_decoder import MAEDecoder

__all__ = ['FeaturePyramid', 'MAEDecoder']
