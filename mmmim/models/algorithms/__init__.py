from .mae import MAE

__all__ = ['MAE']
