"""BLIP's MED (multimodal mixture of encoder-decoder) on HF ``transformers`` BERT.

The text encoder is a ``BertModel`` and the decoder a ``BertLMHeadModel``,
both with a cross-attention block in every layer (``add_cross_attention``).
HF BERT runs cross-attention only in decoder mode (``is_decoder=True``), whose
self-attention is causal for a ``[B, L]`` mask; the encoder therefore gets a
``[B, L, L]`` mask (:func:`bidirectional_mask`), which BERT applies as given.
Key names are those of the official ``models/med.py`` (a fork of the same
BERT), so official BLIP files map onto these modules one to one.
"""
from typing import List, Optional

import torch
from torch import nn

# BERT sizes: bert-base-uncased (BLIP's MED) and small ones for demos and tests.
MED_ARCHS = {
    'base': dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                 intermediate_size=3072),
    'small': dict(hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=1024),
    'tiny': dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128),
}


def med_config(arch='base', vocab_size: int = 30524, **kwargs):
    """A ``transformers.BertConfig`` of BLIP's MED (``configs/med_config.json``).

    Dropout 0.1, LayerNorm eps 1e-12, 512 positions, pad id 0, cross-attention
    in every layer. ``type_vocab_size=1``: the official MED has no token-type
    embedding; HF BERT's single row is kept at zero and frozen
    (:func:`build_med`), so it adds nothing.

    Args:
        arch: A key of ``MED_ARCHS`` or a dict of BERT sizes.
        vocab_size: Token ids (30,524 = bert-base-uncased + [DEC] + [ENC]).
        **kwargs: Other ``BertConfig`` fields.
    """
    from transformers import BertConfig
    if isinstance(arch, str):
        if arch not in MED_ARCHS:
            raise KeyError(f'unknown MED arch {arch!r}; choose from {sorted(MED_ARCHS)} or a dict')
        arch = MED_ARCHS[arch]
    cfg = dict(hidden_act='gelu', hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
               layer_norm_eps=1e-12, max_position_embeddings=512, pad_token_id=0,
               initializer_range=0.02, type_vocab_size=1)
    cfg.update(arch)
    cfg.update(kwargs)
    return BertConfig(vocab_size=vocab_size, is_decoder=True, add_cross_attention=True,
                      attn_implementation='sdpa', **cfg)


def build_med(config, encoder_width: int, lm_head: bool = False) -> nn.Module:
    """A MED text encoder (``BertModel``, no pooler) or decoder (``BertLMHeadModel``).

    Cross-attention keys / values read image features of ``encoder_width``
    channels (the official ``encoder_width``; HF BERT sizes them to its own
    width, so they are rebuilt when the widths differ, e.g. ViT-L's 1024).
    """
    from transformers import BertLMHeadModel, BertModel
    model = BertLMHeadModel(config) if lm_head else BertModel(config, add_pooling_layer=False)
    bert = model.bert if lm_head else model
    if encoder_width != config.hidden_size:
        for layer in bert.encoder.layer:
            attn = layer.crossattention.self
            for name in ('key', 'value'):
                old = getattr(attn, name)
                new = nn.Linear(encoder_width, old.out_features)
                nn.init.normal_(new.weight, std=config.initializer_range)
                nn.init.zeros_(new.bias)
                setattr(attn, name, new)
    token_type = bert.embeddings.token_type_embeddings
    nn.init.zeros_(token_type.weight)
    token_type.weight.requires_grad_(False)
    return model


def tie_encoder_decoder_weights(encoder: nn.Module, decoder: nn.Module,
                                skip_key: str = 'attention') -> List[str]:
    """Make ``encoder`` use ``decoder``'s parameters except under ``skip_key`` modules.

    As the official ``tie_encoder_decoder_weights(encoder, decoder.bert, '',
    '/attention')``: the self-attention blocks (``layer.N.attention.*``) stay
    separate; embeddings, cross-attention and feed-forward layers become one
    parameter of both. ``crossattention`` is not ``attention``. Returns the
    tied parameter names.
    """
    dec = dict(decoder.named_parameters(remove_duplicate=False))
    tied = []
    for name, _ in list(encoder.named_parameters(remove_duplicate=False)):
        if skip_key in name.split('.'):
            continue
        if name not in dec:
            raise KeyError(f'cannot tie {name}: the decoder has no parameter of that name')
        module_name, _, attr = name.rpartition('.')
        module = encoder.get_submodule(module_name)
        if dec[name].shape != getattr(module, attr).shape:
            raise ValueError(f'cannot tie {name}: shapes {tuple(getattr(module, attr).shape)} and '
                             f'{tuple(dec[name].shape)} differ')
        setattr(module, attr, dec[name])
        tied.append(name)
    return tied


def bidirectional_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """``[B, L]`` padding mask -> ``[B, L, L]``: every token sees every unpadded token."""
    B, L = attention_mask.shape
    return attention_mask[:, None, :].expand(B, L, L)


def encode_text(bert: nn.Module,
                input_ids: torch.Tensor,
                attention_mask: torch.Tensor,
                image_embeds: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Run a MED encoder: unimodal without ``image_embeds``, image-grounded with them.

    Args:
        bert: A ``BertModel`` from :func:`build_med`.
        input_ids: ``[B, L]`` (``[CLS]`` first for text, ``[ENC]`` for ITM).
        attention_mask: ``[B, L]`` padding mask.
        image_embeds: ``[B, N, C_img]`` image tokens for cross-attention.

    Returns:
        Last hidden states ``[B, L, C]``.
    """
    image_atts = None
    if image_embeds is not None:
        image_atts = torch.ones(image_embeds.shape[:2], dtype=torch.long,
                                device=image_embeds.device)  # [B, N]
    out = bert(input_ids=input_ids, attention_mask=bidirectional_mask(attention_mask),
               encoder_hidden_states=image_embeds, encoder_attention_mask=image_atts,
               use_cache=False, return_dict=True)
    return out.last_hidden_state
