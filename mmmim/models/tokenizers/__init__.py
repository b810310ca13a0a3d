from .dalle import DALLEEncoder

__all__ = ['DALLEEncoder']
