from .dalle import DALLEEncoder
from .vqkd import VQKD, NormEMAVectorQuantizer

__all__ = ['DALLEEncoder', 'VQKD', 'NormEMAVectorQuantizer']
