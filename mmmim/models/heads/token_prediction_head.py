"""Visual-token prediction head of BEiT / BEiT v2 / CAE."""
from typing import Dict

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from mmmim.registry import MODELS


@MODELS.register_module()
class TokenPredictionHead(BaseModule):
    """A linear classifier of tokens into ``vocab_size`` visual tokens, with cross-entropy.

    The linear layer keeps the official name ``lm_head``.

    Args:
        embed_dim: Token width.
        vocab_size: Codebook size of the tokenizer (8192).
        init_std: Std of the classifier weight (normal truncated at one std, as BEiT).
    """

    def __init__(self, embed_dim: int, vocab_size: int = 8192, init_std: float = 0.02):
        super().__init__()
        self.lm_head = nn.Linear(embed_dim, vocab_size)
        nn.init.trunc_normal_(self.lm_head.weight, std=init_std, a=-init_std, b=init_std)
        nn.init.zeros_(self.lm_head.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[..., vocab]`` of tokens ``[..., C]``."""
        return self.lm_head(x)

    @staticmethod
    def loss(logits: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Mean cross-entropy over the given (masked) positions, and their accuracy.

        Args:
            logits: ``[M, vocab]`` for the M masked positions of the batch.
            target: ``[M]`` token ids.
        """
        loss = F.cross_entropy(logits.float(), target)
        acc = (logits.argmax(-1) == target).float().mean().detach()
        return dict(loss=loss, acc=acc)
