"""Transfusion's attention mask over mixed sequences of text tokens and image patches.

A position may attend to every earlier position (causal), to every patch of
its own image (bidirectional within an image) and to itself; padded
positions are never attended to by others. A sequence is described by
``image_ids`` ``[B, S]``: ``-1`` at text tokens (BOI / EOI included) and, at
the patches of an image, an id that is the same for all its patches and
differs from every other image of the row. A row packed with several
documents also gives ``doc_ids`` ``[B, S]``; a position then attends only
within its own document.

Two forms of the same mask: a boolean tensor for
``F.scaled_dot_product_attention`` (any device) and a FlexAttention
``BlockMask`` (sparse blocks; for CUDA, where it skips the masked blocks).
"""
from typing import Optional

import torch


def mixed_modal_mask(image_ids: torch.Tensor, valid: Optional[torch.Tensor] = None,
                     num_queries: Optional[int] = None,
                     doc_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Boolean mask ``[B, 1, N, S]`` (``True`` = may attend) for the last ``N`` of ``S`` positions.

    Args:
        image_ids: ``[B, S]``, ``-1`` for text, an image's id at its patches.
        valid: ``[B, S]``, ``False`` at padding (default: all valid).
        num_queries: ``N``, the queries being the last ``N`` positions (a
            KV-cached step); default ``S``.
        doc_ids: ``[B, S]``, the document of each position in a packed row
            (default: one document a row).
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
    if doc_ids is not None:
        allowed = allowed & (doc_ids[:, S - N:, None] == doc_ids[:, None, :])
    if valid is not None:
        allowed = allowed & valid[:, None, :]
    allowed = allowed | (k[None, :] == q[:, None])[None]  # a padded query still sees itself
    return allowed[:, None]


def mixed_modal_block_mask(image_ids: torch.Tensor, valid: Optional[torch.Tensor] = None,
                           doc_ids: Optional[torch.Tensor] = None):
    """The mask of :func:`mixed_modal_mask` (all ``S`` queries) as a FlexAttention ``BlockMask``."""
    from torch.nn.attention.flex_attention import create_block_mask
    B, S = image_ids.shape
    if valid is None:
        valid = torch.ones_like(image_ids, dtype=torch.bool)
    if doc_ids is None:
        doc_ids = torch.zeros_like(image_ids)

    def mask_mod(b, h, q_idx, kv_idx):
        img_q, img_k = image_ids[b, q_idx], image_ids[b, kv_idx]
        allowed = (kv_idx <= q_idx) | ((img_q == img_k) & (img_q >= 0))
        allowed = allowed & (doc_ids[b, q_idx] == doc_ids[b, kv_idx])
        return (allowed & valid[b, kv_idx]) | (q_idx == kv_idx)

    return create_block_mask(mask_mod, B, None, S, S, device=image_ids.device)
