from .attention import Attention, Block, CrossAttention, Mlp
from .decomposed_rel_pos import decomposed_rel_pos_bias, resize_rel_pos
from .drop_path import DropPath
from .frozen import eval_mode, freeze
from .init import rescale_block_outputs, trunc_normal_one_std
from .llama import LlamaAttention, LlamaBlock, RMSNorm, RotaryEmbedding, SwiGLU
from .mixed_modal_mask import mixed_modal_block_mask, mixed_modal_mask
from .norm import LayerNorm2d
from .pos_embed import resize_pos_embed, sincos_2d
from .rel_pos_bias import RelativePositionBias, relative_position_index, resize_rel_pos_table
from .window import window_partition, window_unpartition

__all__ = [
    'Attention', 'Block', 'CrossAttention', 'Mlp', 'DropPath', 'resize_pos_embed', 'sincos_2d',
    'RelativePositionBias', 'relative_position_index', 'resize_rel_pos_table', 'LayerNorm2d',
    'window_partition', 'window_unpartition', 'eval_mode', 'freeze', 'rescale_block_outputs',
    'trunc_normal_one_std', 'decomposed_rel_pos_bias', 'resize_rel_pos', 'LlamaAttention',
    'LlamaBlock', 'RMSNorm', 'RotaryEmbedding', 'SwiGLU', 'mixed_modal_block_mask',
    'mixed_modal_mask'
]
