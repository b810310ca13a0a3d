from .hooks import RandomStateHook
from .layer_decay import LayerDecayOptimWrapperConstructor, no_weight_decay

__all__ = ['RandomStateHook', 'LayerDecayOptimWrapperConstructor', 'no_weight_decay']
