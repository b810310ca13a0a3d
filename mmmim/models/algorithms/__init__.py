from .base import BaseMIM
from .beit import BEiT, BEiTv2
from .cae import CAE
from .mae import MAE

__all__ = ['BaseMIM', 'BEiT', 'BEiTv2', 'CAE', 'MAE']
from .rar import RAR

__all__ += ['RAR']
from .blip import BLIP

__all__ += ['BLIP']
from .transfusion import Transfusion

__all__ += ['Transfusion']
from .blip2 import BLIP2, InstructBLIP

__all__ += ['BLIP2', 'InstructBLIP']
