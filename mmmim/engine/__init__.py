from .hooks import RandomStateHook

__all__ = ['RandomStateHook']
