from .attention import Attention, Block, Mlp
from .drop_path import DropPath
from .pos_embed import resize_pos_embed, sincos_2d
from .rel_pos_bias import RelativePositionBias, relative_position_index, resize_rel_pos_table

__all__ = [
    'Attention', 'Block', 'Mlp', 'DropPath', 'resize_pos_embed', 'sincos_2d',
    'RelativePositionBias', 'relative_position_index', 'resize_rel_pos_table'
]
