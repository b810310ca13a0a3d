"""Transfusion's attention mask over mixed sequences of text tokens and image patches.

A position may attend to every earlier position (causal), to every patch of
its own image (bidirectional within an image) and to itself; padded
positions are never attended to by others. A sequence is described by
``image_ids`` ``[B, S]``: ``-1`` at text tokens (BOI / EOI included) and, at
the patches of an image, an id that is the same for all its patches and
differs from every other image of the row.

Two forms of the same mask: a boolean tensor for
``F.scaled_dot_product_attention`` (any device) and a FlexAttention
``BlockMask`` (sparse blocks; for CUDA, where it skips the masked blocks).
"""
from typing import Optional

import torch


def mixed_modal_mask(image_ids: torch.Tensor, valid: Optional[torch.Tensor] = None,
                     num_queries: Optional[int] = None) -> torch.Tensor:
    """Boolean mask ``[B, 1, N, S]`` (``True`` = may attend) for the last ``N`` of ``S`` positions.

    Args:
        image_ids: ``[B, S]``, ``-1`` for text, an image's id at its patches.
        valid: ``[B, S]``, ``False`` at padding (default: all valid).
        num_queries: ``N``, the queries being the last ``N`` positions (a
            KV-cached step); default ``S``.
    """
    B, S = image_ids.shape
    N = S if num_queries is None else num_queries
    k = torch.arange(S, device=image_ids.device)
    q = k[S - N:]
    causal = k[None, :] <= q[:, None]  # [N, S]
    img_q = image_ids[:, S - N:, None]  # [B, N, 1]
    img_k = image_ids[:, None, :]  # [B, 1, S]
    same_image = (img_q == img_k) & (img_q >= 0)  # [B, N, S]
    allowed = causal[None] | same_image
    if valid is not None:
        allowed = allowed & valid[:, None, :]
    allowed = allowed | (k[None, :] == q[:, None])[None]  # a padded query still sees itself
    return allowed[:, None]


def mixed_modal_block_mask(image_ids: torch.Tensor, valid: Optional[torch.Tensor] = None):
    """The mask of :func:`mixed_modal_mask` (all ``S`` queries) as a FlexAttention ``BlockMask``."""
    from torch.nn.attention.flex_attention import create_block_mask
    B, S = image_ids.shape
    if valid is None:
        valid = torch.ones_like(image_ids, dtype=torch.bool)

    def mask_mod(b, h, q_idx, kv_idx):
        img_q, img_k = image_ids[b, q_idx], image_ids[b, kv_idx]
        allowed = (kv_idx <= q_idx) | ((img_q == img_k) & (img_q >= 0))
        return (allowed & valid[b, kv_idx]) | (q_idx == kv_idx)

    return create_block_mask(mask_mod, B, None, S, S, device=image_ids.device)
