"""FSDP wrapping for MMEngine's ``FSDPStrategy`` (BLIP-2 / InstructBLIP, Transfusion).

``auto_wrap_policy='transformer_block_wrap_policy'`` in a FlexibleRunner
config makes one FSDP unit of each transformer block: the decoder layers of
a HF LLM (OPT, Llama / Vicuna, T5), the blocks of the mmmim ViT and the
Llama blocks of the Transfusion transformer. ``ShardedGradClipOptimWrapper``
clips by the norm of the whole gradient when each rank holds only a shard.
"""
import torch
from mmengine.dist import all_reduce
from mmengine.optim import OptimWrapper
from mmengine.registry import FUNCTIONS
from torch import nn

from mmmim.registry import OPTIM_WRAPPERS


def _block_classes() -> tuple:
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    from transformers.models.opt.modeling_opt import OPTDecoderLayer
    from transformers.models.t5.modeling_t5 import T5Block

    from mmmim.models.layers import Block, LlamaBlock
    return (OPTDecoderLayer, LlamaDecoderLayer, T5Block, Block, LlamaBlock)


@FUNCTIONS.register_module()
def transformer_block_wrap_policy(module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """torch FSDP auto-wrap policy: descend everywhere, wrap every transformer block."""
    return True if recurse else isinstance(module, _block_classes())


@OPTIM_WRAPPERS.register_module()
class ShardedGradClipOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose gradient-norm clipping sees the whole model when every rank holds
    a disjoint shard of it (FSDP ``FULL_SHARD`` with ``use_orig_params``): the squared norms of
    the local gradient shards are summed over the ranks before clipping, so each rank scales
    its shard by the same factor, that of the full gradient (``clip_grad_norm_`` alone would
    clip each shard by its own norm). Logs ``grad_norm`` as the plain wrapper does.
    """

    def __init__(self, optimizer, accumulative_counts: int = 1, clip_grad=None):
        super().__init__(optimizer, accumulative_counts, clip_grad)
        if clip_grad is not None and self.grad_name == 'grad_norm':
            options = {k: v for k, v in clip_grad.items() if k != 'max_norm'}
            if options.pop('norm_type', 2) != 2 or options:
                raise ValueError('ShardedGradClipOptimWrapper clips by the 2-norm with max_norm '
                                 f'only; got clip_grad={clip_grad}')

    def _clip_grad(self) -> None:
        if self.grad_name != 'grad_norm':  # clipping by value is per element anyway
            return super()._clip_grad()
        params = [p for g in self.optimizer.param_groups for p in g['params']]
        grads = [p.grad for p in params if p.requires_grad and p.grad is not None]
        # every rank joins the reduction, also one whose shards got no gradient
        sq = torch.zeros((), dtype=torch.float32, device=params[0].device)
        for grad in grads:
            sq += grad.detach().float().pow(2).sum()
        all_reduce(sq)  # a no-op without a process group
        total = sq.sqrt()
        scale = (self.clip_grad_kwargs['max_norm'] / (total + 1e-6)).clamp(max=1.0)
        for grad in grads:
            grad.mul_(scale.to(grad.dtype))
        self.message_hub.update_scalar(f'train/{self.grad_name}', float(total))
