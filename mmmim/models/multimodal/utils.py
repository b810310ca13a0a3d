"""Cross-rank gathering and hard-negative sampling shared by BLIP and BLIP-2."""
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


@torch.no_grad()
def concat_all_gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, without gradient.

    ``[B, ...]`` on each of W ranks -> ``[W * B, ...]`` (rank order). A single
    process returns ``x`` unchanged.
    """
    world_size = _world_size()
    if world_size == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(world_size)]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=0)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums the gradients of every rank's copy."""

    @staticmethod
    def forward(ctx, x):
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x.contiguous())
        return tuple(parts)

    @staticmethod
    def backward(ctx, *grads):
        grad = torch.stack(grads).contiguous()  # [W, B, ...]
        dist.all_reduce(grad)
        return grad[dist.get_rank()]


def all_gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping the gradient.

    The gradient that reaches this rank's ``x`` is the sum over ranks of the
    gradients of its copy (as the official BLIP ``GatherLayer``). A single
    process returns ``x`` unchanged.
    """
    if _world_size() == 1:
        return x
    return torch.cat(_GatherWithGrad.apply(x), dim=0)


@torch.no_grad()
def sample_hard_negatives(sim: torch.Tensor,
                          positive_mask: torch.Tensor,
                          eps: float = 0.0,
                          generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Draw one hard negative per row from softmax(sim) with positives excluded.

    Weights are ``softmax(sim, dim=1) + eps`` with the positive entries set to
    0, and one column per row is drawn with ``torch.multinomial`` (BLIP / BLIP-2
    ITM). A row whose non-positive weights all underflow to 0 draws uniformly
    among its non-positive columns.

    Args:
        sim: Similarities ``[B, N]`` (already divided by the temperature).
        positive_mask: Bool ``[B, N]``, True where column j is a positive of row i
            (the diagonal within a batch, or equal image ids).
        eps: Added to the softmax before masking (BLIP pretraining uses 1e-4).
        generator: Optional RNG for reproducible draws.

    Returns:
        Column indices ``[B]`` (long), never a positive.
    """
    if sim.shape != positive_mask.shape:
        raise ValueError(f'sim {tuple(sim.shape)} and positive_mask '
                         f'{tuple(positive_mask.shape)} differ in shape')
    positive_mask = positive_mask.bool()
    if positive_mask.all(dim=1).any():
        row = int(positive_mask.all(dim=1).nonzero()[0])
        raise ValueError(f'row {row} has no negative to sample: every column is a positive '
                         '(a batch of one image id?)')
    weights = F.softmax(sim.float(), dim=1) + eps  # [B, N]
    weights = weights.masked_fill(positive_mask, 0.0)
    empty = weights.sum(dim=1) <= 0
    if empty.any():
        weights[empty] = (~positive_mask[empty]).float()
    return torch.multinomial(weights, 1, generator=generator).squeeze(1)  # [B]
