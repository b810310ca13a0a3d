from .attention import Attention, Block, CrossAttention, Mlp
from .drop_path import DropPath
from .norm import LayerNorm2d
from .pos_embed import resize_pos_embed, sincos_2d
from .rel_pos_bias import RelativePositionBias, relative_position_index, resize_rel_pos_table
from .window import window_partition, window_unpartition

__all__ = [
    'Attention', 'Block', 'CrossAttention', 'Mlp', 'DropPath', 'resize_pos_embed', 'sincos_2d',
    'RelativePositionBias', 'relative_position_index', 'resize_rel_pos_table', 'LayerNorm2d',
    'window_partition', 'window_unpartition'
]
