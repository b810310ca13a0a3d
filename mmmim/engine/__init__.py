from .hooks import RandomStateHook, SkippedImagesHook
from .layer_decay import LayerDecayOptimWrapperConstructor, no_weight_decay

__all__ = [
    'RandomStateHook', 'SkippedImagesHook', 'LayerDecayOptimWrapperConstructor', 'no_weight_decay'
]
from .generation import GANOptimWrapperConstructor, RandomnessAnnealingHook, randomness_ratio

__all__ += ['GANOptimWrapperConstructor', 'RandomnessAnnealingHook', 'randomness_ratio']
from .group_lr_hook import GroupLrHook
from .knn_hook import KNNEvalHook
from .nonfinite import NonFiniteGuardHook, NonFiniteSkipAmpOptimWrapper, NonFiniteSkipOptimWrapper

__all__ += [
    'GroupLrHook', 'KNNEvalHook', 'NonFiniteGuardHook', 'NonFiniteSkipAmpOptimWrapper',
    'NonFiniteSkipOptimWrapper'
]
from .blip import ITCAlphaWarmupHook, itc_alpha

__all__ += ['ITCAlphaWarmupHook', 'itc_alpha']
from .fsdp import ShardedGradClipOptimWrapper, transformer_block_wrap_policy

__all__ += ['ShardedGradClipOptimWrapper', 'transformer_block_wrap_policy']
