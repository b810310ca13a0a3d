"""BLIP-2 / InstructBLIP checkpoints: LAVIS files, HF ``transformers`` layouts, mmmim's own.

mmmim's ``BLIP2`` / ``InstructBLIP`` keys are ``visual_encoder.*`` (the mmmim
ViT, timm names, as LAVIS's EVA ViT), ``ln_vision.*``, ``qformer.query_tokens``,
``qformer.embeddings.*`` (word / position embeddings), ``qformer.bert.*``
(transformers' ``Blip2QFormerModel``: ``layernorm``, ``encoder.layer.N.*``),
``qformer.cls.*`` (ITG head), ``vision_proj`` / ``text_proj`` / ``itm_head``
/ ``temp`` (stage 1), ``llm_proj`` and ``llm.model.*`` (stage 2).

- LAVIS (``blip2_pretrained.pth``, ``blip2_pretrained_opt2.7b.pth``,
  ``blip2_pretrained_flant5xl.pth``, ``instruct_blip_*_trimmed.pth``):
  ``Qformer.bert.*`` with BERT names (``attention.self``), ``query_tokens``
  at the top, ``opt_proj`` / ``t5_proj`` / ``llm_proj``.
  A CLIP ViT-L tower (LAVIS ``clip_vit.py``, ``blip2_pretrained_vitL.pth``)
  has OpenAI CLIP's names under ``visual_encoder.`` (``conv1``,
  ``class_embedding``, ``positional_embedding``, ``ln_pre``,
  ``transformer.resblocks.N.*``).
- HF ``Blip2ForConditionalGeneration`` / ``InstructBlipForConditionalGeneration``:
  ``vision_model.*`` (CLIP-style names, fused q / v bias, ``post_layernorm``
  = ``ln_vision``), ``qformer.*``, ``language_projection``, ``language_model.*``.
"""
import re
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from .convert import StateDict, unwrap
from .io import read_checkpoint

BLIP2_FORMATS = ('mmmim', 'lavis', 'hf')
_LLM_PROJ = ('opt_proj.', 't5_proj.', 'llm_proj.')
_LLM = ('opt_model.', 't5_model.', 'llm_model.')
# Parts of a file a model may lack, dropped and reported: stage-1 text-side
# parts loaded into stage 2 (LAVIS drops them too), BERT's position-id buffer.
STAGE1_ONLY = ('qformer.embeddings.', 'qformer.cls.', 'vision_proj.', 'text_proj.', 'itm_head.',
               'temp')
_TEXT_FFN = re.compile(r'^qformer\.bert\.encoder\.layer\.\d+\.(intermediate|output)\.')

# HF vision block names -> mmmim ViT block names (after ``encoder.layers.N.`` / ``blocks.N.``).
_HF_VIT_BLOCK = {'layer_norm1.': 'norm1.', 'layer_norm2.': 'norm2.', 'self_attn.projection.':
                 'attn.proj.', 'self_attn.qkv.weight': 'attn.qkv.weight', 'mlp.fc1.': 'mlp.fc1.',
                 'mlp.fc2.': 'mlp.fc2.'}
_HF_VIT_EMBED = {'embeddings.class_embedding': 'cls_token',
                 'embeddings.position_embedding': 'pos_embed',
                 'embeddings.patch_embedding.weight': 'patch_embed.proj.weight',
                 'embeddings.patch_embedding.bias': 'patch_embed.proj.bias'}


# OpenAI CLIP / LAVIS clip_vit.py block names -> mmmim ViT block names (after
# ``transformer.resblocks.N.`` / ``blocks.N.``); ``nn.MultiheadAttention``'s fused
# ``in_proj`` is q, k, v, as ``qkv``.
_CLIP_BLOCK = {'ln_1.': 'norm1.', 'ln_2.': 'norm2.', 'attn.in_proj_weight': 'attn.qkv.weight',
               'attn.in_proj_bias': 'attn.qkv.bias', 'attn.out_proj.': 'attn.proj.',
               'mlp.c_fc.': 'mlp.fc1.', 'mlp.c_proj.': 'mlp.fc2.'}


def from_clip_vit(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """OpenAI CLIP image-tower keys (LAVIS ``clip_vit.py``, no ``visual_encoder.`` prefix) to
    the mmmim ViT's; returns the dict and the dropped ``(key, reason)``: CLIP's image head
    ``ln_post`` / ``proj``, which BLIP-2 does not run. Any other key is an error."""
    out, dropped = {}, []
    for k, v in sd.items():
        if k == 'conv1.weight':
            out['patch_embed.proj.weight'] = v
        elif k == 'class_embedding':
            out['cls_token'] = v.reshape(1, 1, -1)  # [C] -> [1, 1, C]
        elif k == 'positional_embedding':
            out['pos_embed'] = v.unsqueeze(0)  # [1 + h*w, C] -> [1, 1 + h*w, C]
        elif k.startswith('ln_pre.'):
            out['norm_pre.' + k[len('ln_pre.'):]] = v
        elif k.startswith('ln_post.') or k == 'proj':
            dropped.append((k, "CLIP's image head (ln_post, proj), not run by BLIP-2"))
        else:
            m = re.match(r'transformer\.resblocks\.(\d+)\.(.+)$', k)
            hit = m and next((src for src in _CLIP_BLOCK if m.group(2).startswith(src)), None)
            if not hit:
                raise KeyError(f'CLIP ViT key {k!r} has no place in the mmmim ViT')
            out[f'blocks.{m.group(1)}.{_CLIP_BLOCK[hit]}{m.group(2)[len(hit):]}'] = v
    return out, dropped


def to_clip_vit(sd: StateDict) -> StateDict:
    """The inverse of :func:`from_clip_vit` (mmmim ViT keys, no prefix, to CLIP's)."""
    inv = {v: k for k, v in _CLIP_BLOCK.items()}
    out = {}
    for k, v in sd.items():
        if k == 'patch_embed.proj.weight':
            out['conv1.weight'] = v
        elif k == 'cls_token':
            out['class_embedding'] = v.reshape(-1)
        elif k == 'pos_embed':
            out['positional_embedding'] = v[0]
        elif k.startswith('norm_pre.'):
            out['ln_pre.' + k[len('norm_pre.'):]] = v
        else:
            m = re.match(r'blocks\.(\d+)\.(.+)$', k)
            hit = m and next((src for src in inv if m.group(2).startswith(src)), None)
            if not hit:
                raise KeyError(f'ViT key {k!r} has no place in the CLIP layout')
            out[f'transformer.resblocks.{m.group(1)}.{inv[hit]}{m.group(2)[len(hit):]}'] = v
    return out


def _split_tower(sd: StateDict) -> Tuple[StateDict, StateDict]:
    """``(visual_encoder.* without the prefix, the rest)``."""
    n = len('visual_encoder.')
    return ({k[n:]: v for k, v in sd.items() if k.startswith('visual_encoder.')},
            {k: v for k, v in sd.items() if not k.startswith('visual_encoder.')})


def detect_blip2_format(sd: StateDict) -> str:
    """``'lavis'`` (``Qformer.bert.*``), ``'hf'`` (``qformer.encoder.*``) or ``'mmmim'``."""
    if any(k.startswith('Qformer.') for k in sd):
        return 'lavis'
    if any(k.startswith('qformer.bert.') for k in sd):
        return 'mmmim'
    if any(k.startswith(('qformer.encoder.', 'vision_model.')) for k in sd):  # incl. retrieval
        return 'hf'
    raise ValueError('not a BLIP-2 / InstructBLIP checkpoint (no Qformer.*, qformer.* or '
                     'vision_model.* keys); first keys: ' + ', '.join(list(sd)[:6]))


def from_lavis(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """LAVIS keys to mmmim's; returns the dict and the dropped ``(key, reason)``.

    An EVA tower (timm names) is kept as it is, a CLIP ViT-L tower converted."""
    out, dropped = {}, []
    if 'visual_encoder.conv1.weight' in sd:  # CLIP ViT-L (LAVIS clip_vit.py)
        tower, sd = _split_tower(sd)
        tower, tower_dropped = from_clip_vit(tower)
        out.update({'visual_encoder.' + k: v for k, v in tower.items()})
        dropped += [('visual_encoder.' + k, r) for k, r in tower_dropped]
    for k, v in sd.items():
        if k.endswith('embeddings.position_ids'):
            dropped.append((k, 'BERT position-id buffer, recomputed'))
        elif k.startswith(('visual_encoder.', 'ln_vision.', 'vision_proj.', 'text_proj.',
                           'itm_head.')) or k == 'temp':
            out[k] = v
        elif k == 'query_tokens':
            out['qformer.query_tokens'] = v
        elif k.startswith('Qformer.bert.embeddings.LayerNorm.'):
            out['qformer.bert.layernorm.' + k.rsplit('.', 1)[1]] = v
        elif k.startswith('Qformer.bert.embeddings.'):
            out['qformer.embeddings.' + k[len('Qformer.bert.embeddings.'):]] = v
        elif k.startswith('Qformer.bert.encoder.'):
            name = k[len('Qformer.bert.'):].replace('.attention.self.', '.attention.attention.')
            out['qformer.bert.' + name.replace('.crossattention.self.',
                                               '.crossattention.attention.')] = v
        elif k.startswith('Qformer.cls.'):
            out['qformer.' + k[len('Qformer.'):]] = v
        elif k.startswith(_LLM_PROJ):
            out['llm_proj.' + k.split('.', 1)[1]] = v
        elif k.startswith(_LLM):
            out['llm.model.' + k.split('.', 1)[1]] = v
        else:
            raise KeyError(f'LAVIS BLIP-2 key {k!r} has no place in mmmim')
    return out, dropped


def to_lavis(sd: StateDict, proj: str = 'opt_proj') -> StateDict:
    """mmmim keys to LAVIS's (``proj``: ``opt_proj`` / ``t5_proj`` / ``llm_proj``); the
    frozen LLM is left out, as LAVIS files have it not. A CLIP tower (``norm_pre``) gets
    CLIP's names, as LAVIS's ``clip_vit.py``."""
    if proj + '.' not in _LLM_PROJ:
        raise ValueError(f'proj must be one of {[p[:-1] for p in _LLM_PROJ]}, got {proj!r}')
    out = {}
    if 'visual_encoder.norm_pre.weight' in sd:
        tower, sd = _split_tower(sd)
        out.update({'visual_encoder.' + k: v for k, v in to_clip_vit(tower).items()})
    for k, v in sd.items():
        if k.startswith('llm.'):
            continue
        if k == 'qformer.query_tokens':
            k = 'query_tokens'
        elif k.startswith('qformer.bert.layernorm.'):
            k = 'Qformer.bert.embeddings.LayerNorm.' + k.rsplit('.', 1)[1]
        elif k.startswith('qformer.embeddings.'):
            k = 'Qformer.bert.' + k[len('qformer.'):]
        elif k.startswith('qformer.bert.encoder.'):
            k = 'Qformer.' + k[len('qformer.'):].replace('.attention.attention.', '.attention.self.')
            k = k.replace('.crossattention.attention.', '.crossattention.self.')
        elif k.startswith('qformer.cls.'):
            k = 'Qformer.' + k[len('qformer.'):]
        elif k.startswith('llm_proj.'):
            k = proj + '.' + k.split('.', 1)[1]
        out[k] = v
    return out


def from_hf(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """HF ``Blip2ForConditionalGeneration`` / ``InstructBlipForConditionalGeneration`` (and
    the stage-1 ``Blip2ForImageTextRetrieval``, without ``temp``) keys to mmmim's.

    The fused ``qkv.bias`` (q, 0, v) is split into ``q_bias`` / ``v_bias``; a
    non-zero key part is an error (mmmim's ViT has no key bias).
    """
    out, dropped = {}, []
    for k, v in sd.items():
        if k.startswith('vision_model.'):
            name = k[len('vision_model.'):]
            if name in _HF_VIT_EMBED:
                out['visual_encoder.' + _HF_VIT_EMBED[name]] = v
                continue
            if name.startswith('post_layernorm.'):
                out['ln_vision.' + name.rsplit('.', 1)[1]] = v
                continue
            m = re.match(r'encoder\.layers\.(\d+)\.(.+)$', name)
            if not m:
                raise KeyError(f'HF vision key {k!r} has no place in mmmim')
            prefix, rest = f'visual_encoder.blocks.{m.group(1)}.', m.group(2)
            if rest == 'self_attn.qkv.bias':
                C = v.shape[0] // 3
                if v[C:2 * C].abs().max() > 0:
                    raise ValueError(f'{k}: the key part of the fused bias is not zero; '
                                     "mmmim's ViT (q / v bias) cannot hold it")
                out[prefix + 'attn.q_bias'], out[prefix + 'attn.v_bias'] = v[:C], v[2 * C:]
                continue
            hit = next((src for src in _HF_VIT_BLOCK if rest.startswith(src)), None)
            if hit is None:
                raise KeyError(f'HF vision key {k!r} has no place in mmmim')
            out[prefix + _HF_VIT_BLOCK[hit] + rest[len(hit):]] = v
        elif k == 'query_tokens':
            out['qformer.query_tokens'] = v
        elif k.startswith(('qformer.layernorm.', 'qformer.embeddings.layernorm.')):
            out['qformer.bert.layernorm.' + k.rsplit('.', 1)[1]] = v
        elif k.startswith('qformer.embeddings.'):
            if k.endswith('position_ids'):
                dropped.append((k, 'position-id buffer, recomputed'))
            else:
                out[k] = v
        elif k.startswith('qformer.encoder.'):
            out['qformer.bert.' + k[len('qformer.'):]] = v
        elif k.startswith('embeddings.'):  # Blip2ForImageTextRetrieval (stage 1)
            if not k.endswith('position_ids'):
                out['qformer.' + k] = v
        elif k.startswith(('vision_projection.', 'text_projection.')):
            out[k.replace('_projection.', '_proj.', 1)] = v
        elif k.startswith('itm_head.'):
            out[k] = v
        elif k.startswith('language_projection.'):
            out['llm_proj.' + k.split('.', 1)[1]] = v
        elif k.startswith('language_model.'):
            out['llm.model.' + k[len('language_model.'):]] = v
        else:
            raise KeyError(f'HF BLIP-2 key {k!r} has no place in mmmim')
    return out, dropped


def to_hf(sd: StateDict, instruct: bool = False) -> StateDict:
    """mmmim keys to HF ``Blip2ForConditionalGeneration`` (or, ``instruct=True``,
    ``InstructBlipForConditionalGeneration``) keys. Stage-1 heads have no place there."""
    inv_block = {v: k for k, v in _HF_VIT_BLOCK.items()}
    inv_embed = {v: k for k, v in _HF_VIT_EMBED.items()}
    out = {}
    for k, v in sd.items():
        if k.startswith(('qformer.cls.', 'vision_proj.', 'text_proj.', 'itm_head.')) or k == 'temp':
            raise KeyError(f'{k}: stage-1 parts have no place in the HF generation layouts')
        if k.startswith('visual_encoder.'):
            name = k[len('visual_encoder.'):]
            if name.startswith('norm_pre.') or name.endswith('attn.qkv.bias'):
                raise KeyError(f"{k}: HF's BLIP-2 vision model (EVA layout) has no pre-norm and "
                               'no key bias; a CLIP ViT-L tower has no place in it')
            if name in inv_embed:
                out['vision_model.' + inv_embed[name]] = v
                continue
            m = re.match(r'blocks\.(\d+)\.(.+)$', name)
            prefix, rest = f'vision_model.encoder.layers.{m.group(1)}.', m.group(2)
            if rest == 'attn.q_bias':
                v_bias = sd[k.replace('q_bias', 'v_bias')]
                out[prefix + 'self_attn.qkv.bias'] = torch.cat([v, torch.zeros_like(v), v_bias])
                continue
            if rest == 'attn.v_bias':
                continue
            hit = next(src for src in inv_block if rest.startswith(src))
            out[prefix + inv_block[hit] + rest[len(hit):]] = v
        elif k.startswith('ln_vision.'):
            out['vision_model.post_layernorm.' + k.rsplit('.', 1)[1]] = v
        elif k == 'qformer.query_tokens':
            out['query_tokens'] = v
        elif k.startswith('qformer.bert.layernorm.'):
            layer_norm = 'qformer.embeddings.layernorm.' if instruct else 'qformer.layernorm.'
            out[layer_norm + k.rsplit('.', 1)[1]] = v
        elif k.startswith('qformer.embeddings.'):
            if not instruct:
                raise KeyError(f"{k}: HF Blip2ForConditionalGeneration's Q-Former has no text "
                               'embeddings (export an InstructBLIP or a stage-2 model)')
            out[k] = v
        elif k.startswith('qformer.bert.encoder.'):
            out['qformer.' + k[len('qformer.bert.'):]] = v
        elif k.startswith('llm_proj.'):
            out['language_projection.' + k.split('.', 1)[1]] = v
        elif k.startswith('llm.model.'):
            out['language_model.' + k[len('llm.model.'):]] = v
        else:
            raise KeyError(f'mmmim BLIP-2 key {k!r} has no HF counterpart')
    return out


HF_BLIP2_FORMATS = ('hf-blip2', 'hf-instructblip')


def is_blip2_checkpoint(sd: StateDict) -> bool:
    """Whether ``sd`` holds BLIP-2 / InstructBLIP weights (queries / Q-Former, any layout)."""
    return any(k.startswith(('Qformer.', 'qformer.', 'query_tokens')) for k in sd)


def hf_blip2_config(sd: StateDict, instruct: bool, vision_heads: int, qformer: dict,
                    text_config: dict, vision_eps: float = 1e-6) -> dict:
    """The ``config.json`` dict of HF ``Blip2ForConditionalGeneration`` (``instruct``:
    ``InstructBlipForConditionalGeneration``) for mmmim weights ``sd``.

    Widths, depths, the patch grid and the query count are read from the
    weights; what they do not hold is given: ``vision_heads``, ``vision_eps``
    (HF has one epsilon for the tower and ``post_layernorm`` = ``ln_vision``),
    ``qformer`` (``Blip2QFormerConfig`` fields: heads, ``layer_norm_eps``,
    ``cross_attention_frequency``, ...) and ``text_config`` (the LLM's config.json).
    """
    import transformers
    if 'llm_proj.weight' not in sd:
        raise KeyError('the HF generation layouts need a stage-2 / InstructBLIP model (llm_proj.*); '
                       'this checkpoint has none (a stage-1 file?)')
    blocks = {int(m.group(1)) for m in (re.match(r'visual_encoder\.blocks\.(\d+)\.', k) for k in sd)
              if m}
    patch = sd['visual_encoder.patch_embed.proj.weight']  # [C, 3, p, p]
    side = int(round((sd['visual_encoder.pos_embed'].shape[1] - 1) ** 0.5))
    vision = dict(hidden_size=patch.shape[0], num_hidden_layers=len(blocks),
                  num_attention_heads=vision_heads,
                  intermediate_size=sd['visual_encoder.blocks.0.mlp.fc1.weight'].shape[0],
                  image_size=side * patch.shape[-1], patch_size=patch.shape[-1],
                  layer_norm_eps=vision_eps, qkv_bias=True)
    layers = {int(m.group(1)) for m in (re.match(r'qformer\.bert\.encoder\.layer\.(\d+)\.', k)
                                        for k in sd) if m}
    query = sd['qformer.query_tokens']  # [1, Q, C]
    qf = dict(qformer, hidden_size=query.shape[-1], num_hidden_layers=len(layers),
              encoder_hidden_size=patch.shape[0],
              intermediate_size=sd['qformer.bert.encoder.layer.0.intermediate_query.dense.weight']
              .shape[0])
    if instruct:
        words = sd['qformer.embeddings.word_embeddings.weight']
        qf.update(vocab_size=words.shape[0], max_position_embeddings=sd[
            'qformer.embeddings.position_embeddings.weight'].shape[0])
    cls = transformers.InstructBlipConfig if instruct else transformers.Blip2Config
    config = cls(vision_config=vision, qformer_config=qf, text_config=dict(text_config),
                 num_query_tokens=query.shape[1]).to_dict()
    config['architectures'] = ['InstructBlipForConditionalGeneration' if instruct
                               else 'Blip2ForConditionalGeneration']
    return config


def blip2_to_hf_export(sd: StateDict, instruct: bool, vision_heads: int, qformer: dict,
                       text_config: dict, vision_eps: float = 1e-6):
    """mmmim BLIP-2 / InstructBLIP weights as an HF folder's ``(config, state_dict, dropped)``.

    Stage-1 parts (ITC / ITM heads, ITG head; for BLIP-2 also the Q-Former's
    text side) have no place in the generation classes and are dropped with
    the reason; tensors sharing storage (tied LLM embeddings) are written
    once each, as separate copies. See :func:`hf_blip2_config` for the options.
    """
    heads = ('qformer.cls.', 'vision_proj.', 'text_proj.', 'itm_head.', 'temp')
    kept, dropped = {}, []
    for k, v in sd.items():
        text_side = not instruct and (k.startswith('qformer.embeddings.') or _TEXT_FFN.match(k))
        if k.startswith(heads) or text_side:
            dropped.append((k, 'stage-1 part, no place in the HF generation model'))
        else:
            kept[k] = v
    config = hf_blip2_config(kept, instruct, vision_heads, qformer, text_config, vision_eps)
    out, seen = {}, set()
    for k, v in to_hf(kept, instruct=instruct).items():
        out[k] = v.clone() if v.data_ptr() in seen else v
        seen.add(v.data_ptr())
    return config, out, dropped


def blip2_to_mmmim(ckpt: dict, src_format: str = 'auto'):
    """Any BLIP-2 / InstructBLIP checkpoint in mmmim's keys: ``(state_dict, format, dropped)``."""
    sd = unwrap(ckpt)
    fmt = detect_blip2_format(sd) if src_format == 'auto' else src_format
    if fmt == 'lavis':
        out, dropped = from_lavis(sd)
    elif fmt == 'hf':
        out, dropped = from_hf(sd)
    elif fmt == 'mmmim':
        out, dropped = dict(sd), []
    else:
        raise ValueError(f'unknown BLIP-2 layout {fmt!r}; choose from auto, {", ".join(BLIP2_FORMATS)}')
    return out, fmt, dropped


def _few(keys: List[str]) -> str:
    return f'{keys[:6] or "none"}{" ..." if len(keys) > 6 else ""}'


def load_blip2(model: nn.Module, checkpoint: str, allow_pickle: bool = False,
               contents: Optional[dict] = None) -> Dict[str, list]:
    """Load a BLIP-2 / InstructBLIP file (LAVIS, HF or mmmim layout) into ``model``, strictly.

    What may differ, each reported:

    - the frozen LLM (``llm.model.*``) is absent from LAVIS files: it keeps the
      weights of its folder;
    - the image tower (``visual_encoder.*``) may be absent: it keeps the
      weights of ``vit_checkpoint``;
    - a stage-1 file in a stage-2 model: the text side (embeddings, text FFNs,
      ITG head) and the ITC / ITM heads are dropped, ``llm_proj`` stays new;
    - the position table is resized to the model's grid (bicubic, as
      LAVIS's ``interpolate_pos_embed``).

    Anything else missing, unexpected or of the wrong shape is an error naming the keys.
    """
    if contents is None:
        contents = read_checkpoint(checkpoint, allow_pickle=allow_pickle)
    sd, fmt, dropped = blip2_to_mmmim(contents)
    own = model.state_dict()
    notes = []
    if not any(k.startswith('llm.model.') for k in sd):
        notes.append('the file has no LLM weights: llm.model.* keep those of the LLM folder')
        own_check = {k for k in own if not k.startswith('llm.')}
    else:
        own_check = set(own)
    if not any(k.startswith('visual_encoder.') for k in sd):
        notes.append('the file has no image tower: visual_encoder.* keep their weights')
        own_check = {k for k in own_check if not k.startswith('visual_encoder.')}
    stage1_file = any(k.startswith('itm_head.') for k in sd)
    for k in list(sd):
        if k not in own and (k.startswith(STAGE1_ONLY) or _TEXT_FFN.match(k)):
            dropped.append((k, 'stage-1 text side / heads, not part of this model'))
            del sd[k]
    if stage1_file and 'llm_proj.weight' in own and 'llm_proj.weight' not in sd:
        notes.append('stage-1 file: llm_proj stays freshly initialised')
        own_check -= {'llm_proj.weight', 'llm_proj.bias'}
    # tied weights (an LLM's lm_head, the ITG decoder) are saved once by safetensors
    ptrs = {own[k].data_ptr() for k in sd if k in own}
    own_check = {k for k in own_check if k in sd or own[k].data_ptr() not in ptrs}
    # pos_embed resizing happens in the ViT's _load_from_state_dict; compare shapes after it
    missing = sorted(own_check - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = [f'{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}' for k in sorted(set(sd) & set(own))
             if sd[k].shape != own[k].shape and not k.endswith('pos_embed')]
    if missing or unexpected or wrong:
        raise KeyError(f'{checkpoint} ({fmt} layout) does not fit {type(model).__name__}: missing '
                       f'{_few(missing)}, unexpected {_few(unexpected)}, wrong shapes {_few(wrong)}. '
                       'Check the stage, the Q-Former sizes and the LLM against the file')
    model.load_state_dict(sd, strict=False)
    report = [f'loaded {len(sd)} tensors from {checkpoint} ({fmt} layout) into '
              f'{type(model).__name__}'] + notes
    if dropped:
        report.append(f'dropped {len(dropped)} keys: ' + '; '.join(sorted({r for _, r in dropped})))
    print_log('\n  '.join(report), logger='current')
    return dict(format=fmt, dropped=[k for k, _ in dropped], notes=notes)


def load_eva_vit(vit: nn.Module, checkpoint: str, allow_pickle: bool = False) -> Dict[str, list]:
    """Load an image-tower file into an mmmim ViT, strictly: EVA-CLIP ViT-g (LAVIS
    ``eva_vit_g.pth``, timm names) or CLIP ViT-L (LAVIS ``clip_vit_L.pth``, OpenAI CLIP names,
    converted; its ``ln_post`` / ``proj`` head dropped), flat or under ``visual_encoder.``.
    Blocks beyond the ViT's depth are dropped (LAVIS runs 39 of EVA's 40 and 21 of CLIP-L's
    blocks), reported; the position table is resized to the ViT's grid."""
    sd = unwrap(read_checkpoint(checkpoint, allow_pickle=allow_pickle))
    if any(k.startswith('visual_encoder.') for k in sd):
        sd = _split_tower(sd)[0]
    head = []
    if 'conv1.weight' in sd:
        sd, head = from_clip_vit(sd)
    depth = len(vit.blocks)
    extra = sorted({int(m.group(1)) for m in (re.match(r'blocks\.(\d+)\.', k) for k in sd)
                    if m and int(m.group(1)) >= depth})
    kept = {k: v for k, v in sd.items()
            if not (re.match(r'blocks\.(\d+)\.', k) and int(k.split('.')[1]) >= depth)}
    own = vit.state_dict()
    missing = sorted(set(own) - set(kept))
    unexpected = sorted(set(kept) - set(own))
    if missing or unexpected:
        raise KeyError(f'{checkpoint} does not fit the image tower: missing {_few(missing)}, '
                       f'unexpected {_few(unexpected)}. Check arch, patch_size and qv_bias')
    vit.load_state_dict(kept, strict=True)
    report = f'loaded {len(kept)} tensors from {checkpoint} into the image tower'
    if extra:
        report += f'; dropped blocks {extra} (the tower runs {depth} blocks)'
    if head:
        report += f'; dropped {[k for k, _ in head]} ({head[0][1]})'
    print_log(report, logger='current')
    return dict(dropped_blocks=extra, dropped=[k for k, _ in head])
