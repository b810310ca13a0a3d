"""FSDP wrapping of BLIP-2 / InstructBLIP for MMEngine's ``FSDPStrategy``.

``auto_wrap_policy=dict(type='blip2_fsdp_wrap_policy')`` in a FlexibleRunner
config makes one FSDP unit of each transformer block: the decoder layers of
the frozen HF LLM (OPT, Llama / Vicuna, T5) and the blocks of the mmmim ViT.
"""
from mmengine.registry import FUNCTIONS
from torch import nn


def _block_classes() -> tuple:
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    from transformers.models.opt.modeling_opt import OPTDecoderLayer
    from transformers.models.t5.modeling_t5 import T5Block

    from mmmim.models.layers import Block
    return (OPTDecoderLayer, LlamaDecoderLayer, T5Block, Block)


@FUNCTIONS.register_module()
def blip2_fsdp_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """torch FSDP auto-wrap policy: descend everywhere, wrap every transformer block."""
    return True if recurse else isinstance(module, _block_classes())
