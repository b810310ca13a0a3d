from .rar import ARCHS as RAR_ARCHS
from .rar import SAMPLING as RAR_SAMPLING
from .rar import RARTransformer, guidance_scale_at

__all__ = ['RAR_ARCHS', 'RAR_SAMPLING', 'RARTransformer', 'guidance_scale_at']
from .transfusion import ARCHS as TRANSFUSION_ARCHS
from .transfusion import TransfusionTransformer

__all__ += ['TRANSFUSION_ARCHS', 'TransfusionTransformer']
