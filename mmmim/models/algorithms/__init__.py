from .base import BaseMIM
from .beit import BEiT
from .mae import MAE

__all__ = ['BaseMIM', 'BEiT', 'MAE']
