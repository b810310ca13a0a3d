from .med import (MED_ARCHS, bidirectional_mask, build_med, encode_text, med_config,
                  tie_encoder_decoder_weights)
from .utils import all_gather_with_grad, concat_all_gather, sample_hard_negatives

__all__ = [
    'MED_ARCHS', 'bidirectional_mask', 'build_med', 'encode_text', 'med_config',
    'tie_encoder_decoder_weights', 'all_gather_with_grad', 'concat_all_gather',
    'sample_hard_negatives'
]
from .llm import FrozenLLM
from .qformer import QFormer, qformer_attention_mask

__all__ += ['FrozenLLM', 'QFormer', 'qformer_attention_mask']
