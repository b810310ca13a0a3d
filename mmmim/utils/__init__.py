from .files import atomic_write, load_json
from .progress import Progress

__all__ = ['Progress', 'atomic_write', 'load_json']
