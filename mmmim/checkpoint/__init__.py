from .safe_load import allow_mmengine_checkpoint_types

__all__ = ['allow_mmengine_checkpoint_types']
