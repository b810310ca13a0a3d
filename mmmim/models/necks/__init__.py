from .beitv2_neck import BEiTV2Neck
from .cae_neck import CAENeck
from .feature_pyramid import FeaturePyramid
from .mae_decoder import MAEDecoder
from .simple_fpn import SimpleFeaturePyramid

__all__ = ['BEiTV2Neck', 'CAENeck', 'FeaturePyramid', 'MAEDecoder', 'SimpleFeaturePyramid']
