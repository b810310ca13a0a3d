from .progress import Progress

__all__ = ['Progress']
