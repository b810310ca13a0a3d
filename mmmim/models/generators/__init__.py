from .rar import ARCHS as RAR_ARCHS
from .rar import SAMPLING as RAR_SAMPLING
from .rar import RARTransformer, guidance_scale_at

__all__ = ['RAR_ARCHS', 'RAR_SAMPLING', 'RARTransformer', 'guidance_scale_at']
