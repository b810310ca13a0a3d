"""Checkpoint layouts of the field, turned into mmmim's key space and back.

mmmim's model keys are ``backbone.*`` (the ViT, timm / official names),
``neck.*`` (the MAE decoder, official names) and ``head.fc.*`` (a linear
classifier). Each reader returns the converted dict and the keys it dropped,
each with the documented reason.
"""
import re
from typing import Dict, List, NamedTuple, Tuple

import torch

from .resize import expand_shared_rel_pos_bias

StateDict = Dict[str, torch.Tensor]

FORMATS = ('mmmim', 'official', 'openmmlab', 'cae', 'blip', 'blip2')
# Official / timm encoder keys (everything else in an official file is decoder or head).
_ENCODER_ROOTS = ('cls_token', 'pos_embed', 'patch_embed.', 'blocks.', 'norm.', 'fc_norm.',
                  'rel_pos_bias.')
# Keys no mmmim module holds yet, dropped with the reason given.
DROPPED = {
    'relative_position_index': 'buffer, recomputed from the patch grid',
    'lm_head.': "BEiT's masked-token classifier (pretraining only)",
    'cls_pt_layers.': "BEiT v2's patch-aggregation blocks (pretraining only)",
    'data_preprocessor.': 'normalisation constants, set by the config',
}
# Top-level parts of an official CAE pretraining file besides ``encoder.*``:
# the current official code's names (``alignment_encoder``, ``regresser``,
# ``decoder``, ``encoder_to_regresser(_norm)``), then the earlier release's
# (``teacher``, ``pretext_neck``, ``encoder_to_decoder(_norm)``).
CAE_DROPPED = {
    'alignment_encoder.': "CAE's target encoder, a stop-gradient copy of the encoder (pretraining only)",
    'teacher.': "CAE's target encoder, a stop-gradient copy of the encoder (pretraining only)",
    'regresser.': "CAE's latent regressor (pretraining only)",
    'decoder.': "CAE's decoder and token head (pretraining only)",
    'pretext_neck.': "CAE's latent regressor and decoder (pretraining only)",
    'rd_pos_embed': "CAE's regressor / decoder position table (pretraining only)",
    'encoder_to_regresser': "CAE's encoder-to-regressor projection and norm (pretraining only)",
    'encoder_to_decoder': "CAE's encoder-to-regressor projection and norm (pretraining only)",
    'mask_token': "CAE's regressor query token (pretraining only)",
}


class Converted(NamedTuple):
    state_dict: StateDict
    src_format: str
    dropped: List[Tuple[str, str]]  # (key, reason)


def unwrap(ckpt: dict) -> StateDict:
    """The weights of a checkpoint dict, under ``state_dict``, ``model`` or ``module``."""
    for key in ('state_dict', 'model', 'module'):
        if key in ckpt and isinstance(ckpt[key], dict):
            return unwrap(ckpt[key]) if key != 'state_dict' else ckpt[key]
    return ckpt


def detect_format(sd: StateDict) -> str:
    """``'mmmim'``, ``'official'`` (MAE / BEiT / timm), ``'openmmlab'`` (mmpretrain / mmseg)
    or ``'cae'`` (official CAE pretraining: the encoder under ``encoder.``)."""
    keys = list(sd)
    if any(k.startswith(('backbone.blocks.', 'backbone.patch_embed.proj.')) for k in keys):
        return 'mmmim'
    if any(k.startswith(('encoder.blocks.', 'encoder.patch_embed.proj.')) for k in keys):
        return 'cae'
    if any(re.match(r'(backbone\.)?(layers\.\d+\.ln1|patch_embed\.projection)', k) for k in keys):
        return 'openmmlab'
    if any(k.startswith(('blocks.', 'patch_embed.proj.')) for k in keys):
        return 'official'
    raise ValueError('unrecognised checkpoint layout; first keys: ' + ', '.join(keys[:8]))


def _drop(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    kept, dropped = {}, []
    for k, v in sd.items():
        reason = next((r for pattern, r in DROPPED.items() if pattern in k), None)
        if reason is None:
            kept[k] = v
        else:
            dropped.append((k, reason))
    return kept, dropped


def from_official(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """Official MAE (pretrain / full / fine-tuned), BEiT v1 / v2 and timm ViT / BEiT files.

    Encoder keys go under ``backbone.``; MAE's decoder (``decoder_*`` and its
    ``mask_token``) under ``neck.``; a classifier ``head.*`` to ``head.fc.*``.
    BEiT's ``mask_token`` (no decoder in the file) belongs to the encoder.
    """
    sd, dropped = _drop(sd)
    has_decoder = any(k.startswith('decoder_') for k in sd)
    out = {}
    for k, v in sd.items():
        if k.startswith('decoder_') or (k == 'mask_token' and has_decoder):
            out['neck.' + k] = v
        elif k.startswith('head.'):
            out['head.fc.' + k[len('head.'):]] = v
        elif k.startswith(_ENCODER_ROOTS) or k == 'mask_token':
            out['backbone.' + k] = v
        else:
            raise KeyError(f'official checkpoint key {k!r} has no place in mmmim')
    return out, dropped


def from_cae(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """Official CAE pretraining files (``{'model': ...}`` of the CAE training script).

    The encoder (``encoder.*``: timm / BEiT names, q / v biases, layer scale,
    its fixed sin-cos ``pos_embed`` and final ``norm``) goes under
    ``backbone.``; the target encoder, regressor, decoder, their position
    table, projection and ``mask_token`` are dropped (``CAE_DROPPED``).
    """
    sd, dropped = _drop(sd)
    out = {}
    for k, v in sd.items():
        if k.startswith('encoder.'):
            name = k[len('encoder.'):]
            if not name.startswith(_ENCODER_ROOTS):
                raise KeyError(f'CAE encoder key {k!r} has no place in mmmim\'s ViT')
            out['backbone.' + name] = v
            continue
        reason = next((r for prefix, r in CAE_DROPPED.items() if k.startswith(prefix)), None)
        if reason is None:
            raise KeyError(f'CAE checkpoint key {k!r} is not part of the CAE layout (encoder.*, '
                           f'{", ".join(p + "*" for p in CAE_DROPPED)})')
        dropped.append((k, reason))
    return out, dropped


_OPENMMLAB_BLOCK = [
    (r'\.ln1\.', '.norm1.'), (r'\.ln2\.', '.norm2.'), (r'\.ffn\.layers\.0\.0\.', '.mlp.fc1.'),
    (r'\.ffn\.layers\.1\.', '.mlp.fc2.'), (r'\.attn\.gamma1\.weight$', '.gamma_1'),
    (r'\.ffn\.gamma2\.weight$', '.gamma_2'),
]


def from_openmmlab(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """mmpretrain / mmselfsup model files and mmseg BEiT / MAE backbones.

    ``layers.N.{ln1,ln2,ffn.layers.0.0,ffn.layers.1}`` become
    ``blocks.N.{norm1,norm2,mlp.fc1,mlp.fc2}``, ``patch_embed.projection``
    ``patch_embed.proj``, the backbone's ``ln1`` / ``ln2`` ``norm`` /
    ``fc_norm``, the MAE decoder's ``ln1`` ``decoder_norm``. Backbone-only
    files (no ``backbone.`` prefix) are taken as the backbone. Other
    top-level modules (``decode_head``, ...) keep their names.
    """
    if not any(k.startswith('backbone.') for k in sd):
        sd = {'backbone.' + k: v for k, v in sd.items()}
    sd, dropped = _drop(sd)
    out = {}
    for k, v in sd.items():
        k = k.replace('backbone.patch_embed.projection.', 'backbone.patch_embed.proj.')
        k = re.sub(r'^backbone\.layers\.(\d+)\.', r'backbone.blocks.\1.', k)
        if re.match(r'^(backbone\.blocks|neck\.decoder_blocks)\.\d+\.', k):
            for pattern, repl in _OPENMMLAB_BLOCK:
                k = re.sub(pattern, repl, k)
        k = re.sub(r'^backbone\.ln1\.', 'backbone.norm.', k)
        k = re.sub(r'^backbone\.ln2\.', 'backbone.fc_norm.', k)
        k = re.sub(r'^neck\.ln1\.', 'neck.decoder_norm.', k)
        out[k] = v
    return out, dropped


def to_mmmim(ckpt: dict, src_format: str = 'auto') -> Converted:
    """Any supported checkpoint (wrapped or not) in mmmim's key space."""
    sd = unwrap(ckpt)
    if src_format in ('auto', 'blip2'):  # BLIP-2 / InstructBLIP (LAVIS, HF, mmmim): mmmim keys
        from .blip2 import blip2_to_mmmim, is_blip2_checkpoint
        if src_format == 'blip2' or is_blip2_checkpoint(sd):
            out, fmt, dropped = blip2_to_mmmim(sd)
            return Converted(out, f'blip2-{fmt}', dropped)
    if src_format in ('auto', 'blip'):  # BLIP files (any layout): mmmim BLIP keys
        from .blip import detect_blip_layout, to_blip_mmmim
        if src_format == 'blip' or detect_blip_layout(sd) is not None:
            return to_blip_mmmim(sd)
    fmt = detect_format(sd) if src_format == 'auto' else src_format
    if fmt == 'mmmim':
        out, dropped = _drop(sd)
    elif fmt == 'official':
        out, dropped = from_official(sd)
    elif fmt == 'openmmlab':
        out, dropped = from_openmmlab(sd)
    elif fmt == 'cae':
        out, dropped = from_cae(sd)
    else:
        raise ValueError(f'unknown source format {fmt!r}; choose from auto, {", ".join(FORMATS)}')
    return Converted(out, fmt, dropped)


def _backbone(sd: StateDict) -> StateDict:
    return {k[len('backbone.'):]: v for k, v in sd.items() if k.startswith('backbone.')}


def to_timm(sd: StateDict) -> StateDict:
    """mmmim keys to timm's ViT / BEiT layout (the official one): encoder and head."""
    out = _backbone(sd)
    out.update({'head.' + k[len('head.fc.'):]: v for k, v in sd.items() if k.startswith('head.fc.')})
    return out


def to_mmseg(sd: StateDict) -> StateDict:
    """mmmim keys to mmseg's BEiT / MAE backbone layout, under ``backbone.``.

    The layout of mmseg's ``beit2mmseg.py``, with a shared relative position
    table copied into every layer (mmseg's backbones have one per layer);
    classifier and pooling norm (``head``, ``fc_norm``) are left out.
    """
    bb = _backbone(sd)
    if 'rel_pos_bias.relative_position_bias_table' in bb:
        depth = len({k.split('.')[1] for k in bb if k.startswith('blocks.')})
        bb = expand_shared_rel_pos_bias(bb, depth)
    out = {}
    for k, v in bb.items():
        if k.startswith('fc_norm.'):
            continue
        if k.startswith('blocks.'):
            k = 'layers.' + k[len('blocks.'):]
            k = k.replace('.norm1.', '.ln1.').replace('.norm2.', '.ln2.')
            k = k.replace('.mlp.fc1.', '.ffn.layers.0.0.').replace('.mlp.fc2.', '.ffn.layers.1.')
        k = k.replace('patch_embed.proj.', 'patch_embed.projection.')
        out['backbone.' + k] = v
    return out
