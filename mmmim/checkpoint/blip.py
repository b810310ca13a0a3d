"""BLIP checkpoints: the official files, mmpretrain's converted ones, HF transformers', mmmim's.

mmmim's ``BLIP`` uses the official names (``visual_encoder.*`` in timm ViT
names, ``text_encoder.*`` / ``text_decoder.*`` in BERT names, ``*_m``
momentum copies, ``vision_proj``, ``text_proj``, ``itm_head``, ``temp``,
``image_queue``, ``text_queue``, ``queue_ptr``) with two differences: HF
BERT's token-type row ``*.embeddings.token_type_embeddings.weight`` (zero;
the official MED has none) and ``queue_ptr`` for the retrieval model's
``ptr_queue``. The official ``*.embeddings.position_ids`` buffers are
recomputed. Layouts:

- ``official``: ``model_base.pth``, ``model_large.pth`` (pretraining),
  ``model_base_retrieval_coco.pth`` (+ ``idx_queue``, ``ptr_queue``, no
  decoder), ``model_base_caption_capfilt_large.pth`` (``visual_encoder`` +
  ``text_decoder`` only), weights under ``model``;
- ``mmpretrain``: ``BlipRetrieval`` (``vision_backbone``, ``text_backbone``,
  ``vision_neck``, ``text_neck``, ``multimodal_head.fc``, ``head.*`` queues,
  ``*_m``) and ``BlipCaption`` (``visual_encoder`` in mmpretrain ViT names,
  ``seq_gen_head.decoder``);
- ``hf``: ``BlipForImageTextRetrieval`` / ``BlipForConditionalGeneration``
  (``vision_model.*``; no momentum encoders, queues or temperature);
- ``mmmim``: ``tools/train.py`` checkpoints of ``BLIP``.
"""
import re
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from .convert import Converted, StateDict, from_openmmlab, unwrap
from .io import read_checkpoint

BLIP_LAYOUTS = ('official', 'mmpretrain', 'hf', 'mmmim')
TOKEN_TYPE = 'embeddings.token_type_embeddings.weight'
# Parts a file may lack, and what loading does then (reported).
FRESH_IF_ABSENT = {
    'visual_encoder_m.': 'momentum copy, set from the online encoder',
    'text_encoder_m.': 'momentum copy, set from the online encoder',
    'vision_proj_m.': 'momentum copy, set from the online projection',
    'text_proj_m.': 'momentum copy, set from the online projection',
    'image_queue': 'ITC queue, random unit features',
    'text_queue': 'ITC queue, random unit features',
    'queue_ptr': 'queue pointer, 0',
    'idx_queue': 'image-id queue, empty (-100)',
    'temp': 'temperature, 0.07',
}
_TEXT_PARTS = ('text_encoder.', 'text_encoder_m.', 'text_decoder.bert.')
# HF BlipVisionModel names and the timm / mmmim ViT names they map to (``{}``: a block index).
_HF_VISION = [
    ('embeddings.class_embedding', 'cls_token'),
    ('embeddings.position_embedding', 'pos_embed'),
    ('embeddings.patch_embedding.', 'patch_embed.proj.'),
    ('encoder.layers.{}.self_attn.qkv.', 'blocks.{}.attn.qkv.'),
    ('encoder.layers.{}.self_attn.projection.', 'blocks.{}.attn.proj.'),
    ('encoder.layers.{}.layer_norm1.', 'blocks.{}.norm1.'),
    ('encoder.layers.{}.layer_norm2.', 'blocks.{}.norm2.'),
    ('encoder.layers.{}.mlp.', 'blocks.{}.mlp.'),
    ('post_layernorm.', 'norm.'),
]


def _rename_vision(name: str, to_hf: bool) -> Optional[str]:
    """``name`` under :data:`_HF_VISION` (HF -> mmmim, or back with ``to_hf``); None if no rule fits."""
    for hf, ours in _HF_VISION:
        src, dst = (ours, hf) if to_hf else (hf, ours)
        end = '' if src.endswith('.') else '$'  # a prefix, or a whole name
        pattern = '^' + re.escape(src).replace(r'\{\}', r'(\d+)') + end
        new, n = re.subn(pattern, dst.replace('{}', r'\1'), name)
        if n:
            return new
    return None


_MMPRETRAIN_PARTS = {
    'vision_backbone.': 'visual_encoder.', 'vision_backbone_m.': 'visual_encoder_m.',
    'text_backbone.': 'text_encoder.', 'text_backbone_m.': 'text_encoder_m.',
    'vision_neck.': 'vision_proj.', 'vision_neck_m.': 'vision_proj_m.',
    'text_neck.': 'text_proj.', 'text_neck_m.': 'text_proj_m.',
    'multimodal_head.fc.': 'itm_head.', 'head.': '', 'seq_gen_head.decoder.': 'text_decoder.',
    'visual_encoder.': 'visual_encoder.', 'temp': 'temp',
}


def detect_blip_layout(sd: StateDict) -> Optional[str]:
    """The BLIP layout of a state dict, or None when it is not a BLIP checkpoint."""
    keys = list(sd)
    if any(k.startswith('vision_model.embeddings.') for k in keys):
        return 'hf'
    if any(k.startswith(('vision_backbone.', 'seq_gen_head.decoder.', 'visual_encoder.layers.'))
           for k in keys):
        return 'mmpretrain'
    if any(k.startswith('visual_encoder.') for k in keys):
        return 'mmmim' if any(k.endswith(TOKEN_TYPE) for k in keys) else 'official'
    return None


def _with_token_types(sd: StateDict) -> StateDict:
    """Add the zero token-type row of every text part that has word embeddings."""
    out = dict(sd)
    for part in _TEXT_PARTS:
        words = sd.get(part + 'embeddings.word_embeddings.weight')
        if words is not None and part + TOKEN_TYPE not in sd:
            out[part + TOKEN_TYPE] = words.new_zeros(1, words.shape[1])
    return out


def _drop_position_ids(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    kept, dropped = {}, []
    for k, v in sd.items():
        if k.endswith('embeddings.position_ids'):
            dropped.append((k, 'buffer, recomputed'))
        else:
            kept[k] = v
    return kept, dropped


def blip_from_official(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """Official BLIP files: token-type rows added, ``ptr_queue`` -> ``queue_ptr``."""
    sd, dropped = _drop_position_ids(sd)
    sd = {('queue_ptr' if k == 'ptr_queue' else k): v for k, v in sd.items()}
    return _with_token_types(sd), dropped


def _vit_from_openmmlab(sd: StateDict, prefix: str) -> StateDict:
    """mmpretrain ViT names under ``prefix`` -> timm names (through ``from_openmmlab``)."""
    part = {'backbone.' + k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    converted, _ = from_openmmlab(part)
    return {prefix + k[len('backbone.'):]: v for k, v in converted.items()}


def blip_from_mmpretrain(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """mmpretrain ``BlipRetrieval`` / ``BlipCaption`` files."""
    sd, dropped = _drop_position_ids(sd)
    out = {}
    for k, v in sd.items():
        src = next((p for p in sorted(_MMPRETRAIN_PARTS, key=len, reverse=True)
                    if k.startswith(p)), None)
        if src is None:
            raise KeyError(f'mmpretrain BLIP key {k!r} has no place in mmmim\'s BLIP')
        out[_MMPRETRAIN_PARTS[src] + k[len(src):]] = v
    for prefix in ('visual_encoder.', 'visual_encoder_m.'):
        vit = _vit_from_openmmlab(out, prefix)
        out = {k: v for k, v in out.items() if not k.startswith(prefix)}
        out.update(vit)
    return _with_token_types(out), dropped


def blip_from_hf(sd: StateDict) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """HF ``BlipForImageTextRetrieval`` / ``BlipForConditionalGeneration`` weights."""
    sd, dropped = _drop_position_ids(sd)
    out = {}
    for k, v in sd.items():
        if k.startswith('vision_model.'):
            name = k[len('vision_model.'):]
            new = _rename_vision(name, to_hf=False)
            if new is None:
                raise KeyError(f'HF BLIP vision key {k!r} has no place in mmmim\'s ViT')
            out['visual_encoder.' + new] = v
        elif k.startswith(('text_encoder.', 'text_decoder.', 'vision_proj.', 'text_proj.',
                           'itm_head.')):
            out[k] = v
        else:
            raise KeyError(f'HF BLIP key {k!r} has no place in mmmim\'s BLIP (BlipModel and '
                           'BlipForQuestionAnswering files are not BLIP retrieval / caption models)')
    return _with_token_types(out), dropped


def to_blip_mmmim(ckpt: dict, layout: str = 'auto') -> Converted:
    """Any supported BLIP checkpoint (wrapped or not) in mmmim's ``BLIP`` key space."""
    sd = unwrap(ckpt)
    fmt = detect_blip_layout(sd) if layout == 'auto' else layout
    if fmt is None:
        raise ValueError('not a BLIP checkpoint (no visual_encoder.*, vision_backbone.*, '
                         'vision_model.* keys); first keys: ' + ', '.join(list(sd)[:8]))
    readers = dict(official=blip_from_official, mmpretrain=blip_from_mmpretrain, hf=blip_from_hf,
                   mmmim=_drop_position_ids)
    if fmt not in readers:
        raise ValueError(f'unknown BLIP layout {fmt!r}; choose from auto, {", ".join(BLIP_LAYOUTS)}')
    out, dropped = readers[fmt](sd)
    return Converted(out, fmt, dropped)


# --------------------------------------------------------------- mmmim -> official / HF
def blip_to_official(sd: StateDict) -> StateDict:
    """mmmim ``BLIP`` keys to the official layout (token-type rows must be zero)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(TOKEN_TYPE):
            if v.abs().max() > 0:
                raise ValueError(f'{k} is not zero: the official MED has no token-type embedding')
            continue
        out['ptr_queue' if k == 'queue_ptr' and 'idx_queue' in sd else k] = v
    return out


HF_BLIP_FORMATS = ('hf-blip-retrieval', 'hf-blip-caption')


def blip_to_hf(sd: StateDict, dst_format: str, vision_heads: int, text_heads: int,
               bos_token_id: int, sep_token_id: int, pad_token_id: int = 0,
               vision_eps: float = 1e-6, text_eps: float = 1e-12) -> Tuple[dict, StateDict, List]:
    """mmmim ``BLIP`` weights to an HF BLIP ``config.json`` dict and state dict.

    ``hf-blip-retrieval``: ``BlipForImageTextRetrieval`` (image tower, text
    encoder, projections, ITM head); ``hf-blip-caption``:
    ``BlipForConditionalGeneration`` (image tower, decoder). The parts the
    HF class has no place for (momentum encoders, queues, temperature, the
    other text part) are returned as ``(key, reason)`` pairs. Head counts and
    token ids are not in the weights and are given.
    """
    if dst_format not in HF_BLIP_FORMATS:
        raise ValueError(f'unknown HF BLIP format {dst_format!r}; choose from {HF_BLIP_FORMATS}')
    keep = ('text_encoder.', 'vision_proj.', 'text_proj.', 'itm_head.') \
        if dst_format == 'hf-blip-retrieval' else ('text_decoder.', )
    text_part = keep[0]
    if not any(k.startswith(text_part) for k in sd):
        raise KeyError(f'{dst_format} needs {text_part}* weights; this checkpoint has none')
    out, dropped = {}, []
    for k, v in sd.items():
        if k.startswith('visual_encoder.'):
            name = k[len('visual_encoder.'):]
            new = _rename_vision(name, to_hf=True)
            if new is None:
                raise KeyError(f'{k} has no place in HF BlipVisionModel')
            out['vision_model.' + new] = v.clone()
        elif k.startswith(keep) and not k.endswith(TOKEN_TYPE):
            out[k] = v.clone()
        elif k.endswith(TOKEN_TYPE):
            if v.abs().max() > 0:
                raise ValueError(f'{k} is not zero: HF BLIP text models have no token-type embedding')
        else:
            dropped.append((k, f'no place in the {dst_format} model'))
    vis = {k: v for k, v in out.items() if k.startswith('vision_model.')}
    words = out[f'{"text_decoder.bert." if text_part == "text_decoder." else text_part}'
                'embeddings.word_embeddings.weight']
    prefix = 'text_decoder.bert.' if text_part == 'text_decoder.' else text_part
    layer = prefix + 'encoder.layer.'
    num_text_layers = len({k[len(layer):].split('.')[0] for k in out if k.startswith(layer)})
    vision_width = vis['vision_model.embeddings.class_embedding'].shape[-1]
    patch = vis['vision_model.embeddings.patch_embedding.weight'].shape[-1]
    side = int(round((vis['vision_model.embeddings.position_embedding'].shape[1] - 1)**0.5))
    num_vis_layers = len({k.split('.')[3] for k in vis if k.startswith('vision_model.encoder.layers.')})
    inter = out[prefix + 'encoder.layer.0.intermediate.dense.weight'].shape[0]
    vision_config = dict(
        hidden_size=vision_width, num_hidden_layers=num_vis_layers, num_attention_heads=vision_heads,
        intermediate_size=vis['vision_model.encoder.layers.0.mlp.fc1.weight'].shape[0],
        image_size=side * patch, patch_size=patch, layer_norm_eps=vision_eps, hidden_act='gelu')
    text_config = dict(
        vocab_size=words.shape[0], hidden_size=words.shape[1], encoder_hidden_size=vision_width,
        intermediate_size=inter, num_hidden_layers=num_text_layers, num_attention_heads=text_heads,
        max_position_embeddings=out[prefix + 'embeddings.position_embeddings.weight'].shape[0],
        layer_norm_eps=text_eps, bos_token_id=bos_token_id, sep_token_id=sep_token_id,
        pad_token_id=pad_token_id, eos_token_id=sep_token_id, hidden_act='gelu')
    arch = 'BlipForImageTextRetrieval' if dst_format == 'hf-blip-retrieval' \
        else 'BlipForConditionalGeneration'
    config = dict(model_type='blip', architectures=[arch], vision_config=vision_config,
                  text_config=text_config)
    if dst_format == 'hf-blip-retrieval':
        config['image_text_hidden_size'] = out['vision_proj.weight'].shape[0]
    return config, out, dropped


# ------------------------------------------------------------------- loading
def load_blip(module: nn.Module, checkpoint: str, allow_pickle: bool = False,
              contents: Optional[dict] = None) -> Dict[str, List[str]]:
    """Load a BLIP checkpoint of any supported layout into ``module`` (an mmmim ``BLIP``).

    Strict: every tensor of a part the model has must be in the file with
    its shape (``pos_embed`` is resized to the model's grid). The file may
    hold parts the model's task has no place for (a pretraining file's
    decoder in a retrieval model, its text encoder in a captioner), which
    are reported; it may lack the ``FRESH_IF_ABSENT`` parts (HF files),
    which are initialised as listed there and reported. Anything else is an
    error naming the keys, and nothing is loaded then.
    """
    if contents is None:
        contents = read_checkpoint(checkpoint, allow_pickle=allow_pickle)
    converted = to_blip_mmmim(contents)
    sd = converted.state_dict
    own = module.state_dict()
    parts = {k.split('.')[0] for k in sd}
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    fresh = [k for k in missing if k.startswith(tuple(FRESH_IF_ABSENT))
             and not any(k.startswith(p) for p in parts if p.endswith('_m'))]
    bad_missing = [k for k in missing if k not in fresh]
    foreign = [k for k in unexpected if k.split('.')[0] not in {o.split('.')[0] for o in own}]
    bad_unexpected = [k for k in unexpected if k not in foreign]
    wrong = [f'{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}' for k in sorted(set(sd) & set(own))
             if sd[k].shape != own[k].shape and not k.endswith('.pos_embed')]
    # Tensors the model shares (decoder / encoder, LM head / word embeddings) must agree in the file.
    shared = {}
    for k, v in own.items():
        shared.setdefault(v.data_ptr(), []).append(k)
    wrong += [f'{" / ".join(g)} differ (one tensor in BLIP)' for g in shared.values()
              if len(g) > 1 and len(present := [k for k in g if k in sd]) > 1
              and any(not torch.equal(sd[present[0]], sd[k]) for k in present[1:])]
    if bad_missing or bad_unexpected or wrong:
        def few(keys):
            return f'{keys[:8] or "none"}{f" ... ({len(keys)})" if len(keys) > 8 else ""}'
        raise KeyError(f'{checkpoint} ({converted.src_format} BLIP layout) does not fit '
                       f'{type(module).__name__}(task={getattr(module, "task", "?")!r}): missing '
                       f'{few(bad_missing)}, unexpected {few(bad_unexpected)}, wrong shapes '
                       f'{few(wrong)}. Check the vision / text arch, embed_dim, queue_size and '
                       'task against the file')
    module.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    if any(k.startswith(('visual_encoder_m.', 'text_encoder_m.')) for k in fresh):
        module.copy_params()
    report = [f'loaded {len(set(sd) & set(own))} tensors from {checkpoint} '
              f'({converted.src_format} BLIP layout) into BLIP(task={module.task!r})']
    if converted.dropped:
        reasons = sorted({r for _, r in converted.dropped})
        report.append(f'dropped {len(converted.dropped)} keys (position_ids): ' + '; '.join(reasons))
    if foreign:
        report.append('not used by this task: ' + ', '.join(sorted({k.split('.')[0] for k in foreign})))
    if fresh:
        report.append('initialised: ' + '; '.join(sorted(
            {f'{p.rstrip(".")} ({r})' for p, r in FRESH_IF_ABSENT.items()
             if any(k.startswith(p) for k in fresh)})))
    print_log('\n  '.join(report), logger='current')
    return dict(missing=fresh, unexpected=foreign, dropped=[k for k, _ in converted.dropped])


def load_bert_weights(module: nn.Module, path: str) -> Dict[str, List[str]]:
    """Initialise a BLIP's MED from a BERT checkpoint (e.g. a bert-base-uncased folder).

    As the official ``BertModel.from_pretrained('bert-base-uncased')`` for the
    encoder and ``BertLMHeadModel.from_pretrained`` for the decoder:
    ``bert.*`` fills ``text_encoder`` and ``text_decoder.bert``,
    ``cls.predictions.*`` the decoder's LM head; the word embeddings (and LM
    bias) fill the first 30,522 rows, the [DEC] / [ENC] rows keep their
    initialisation (``resize_token_embeddings``). Cross-attention has no
    BERT weights and stays initialised; the pooler, next-sentence head and
    token-type table (the MED has none) are not used. Any other mismatch is
    an error.
    """
    import os.path as osp
    from .hf import read_hf_folder
    sd = read_hf_folder(path)[1] if osp.isdir(path) else unwrap(read_checkpoint(path))
    if not any(k.startswith('bert.') for k in sd):
        sd = {('bert.' + k if not k.startswith('cls.') else k): v for k, v in sd.items()}
    own = module.state_dict()
    targets = [p for p in ('text_encoder.', 'text_decoder.bert.') if any(k.startswith(p) for k in own)]
    out, unused = {}, []
    for k, v in sd.items():
        if k.startswith('bert.'):
            name = k[len('bert.'):]
            dsts = [p + name for p in targets]
        elif k.startswith('cls.predictions.') and 'text_decoder.cls.predictions.bias' in own:
            dsts = ['text_decoder.' + k]
        else:
            dsts = []
        dsts = [d for d in dsts if d in own and not d.endswith(TOKEN_TYPE)]
        if not dsts:
            unused.append(k)
            continue
        for d in dsts:
            if v.shape != own[d].shape:
                if v.ndim >= 1 and v.shape[0] < own[d].shape[0] and v.shape[1:] == own[d].shape[1:]:
                    grown = own[d].clone()
                    grown[:v.shape[0]] = v  # vocabulary grown by [DEC] / [ENC]
                    v = grown
                else:
                    raise KeyError(f'{path}: {k} {tuple(v.shape)} does not fit {d} '
                                   f'{tuple(own[d].shape)}')
            out[d] = v
    bad = [k for k in unused if not re.search(r'pooler|seq_relationship|token_type_embeddings|'
                                              r'position_ids', k)]
    if bad or not out:
        raise KeyError(f'{path} is not a BERT checkpoint that fits BLIP\'s MED: unused {bad[:8]}')
    module.load_state_dict(out, strict=False)
    fresh = sorted({re.sub(r'\.\d+\.', '.N.', k) for k in own
                    if k.startswith(tuple(targets)) and k not in out and 'crossattention' in k})
    print_log(f'initialised the MED from {path}: {len(out)} tensors; cross-attention '
              f'({len(fresh)} kinds) and the [DEC] / [ENC] rows keep their initialisation',
              logger='current')
    return dict(loaded=sorted(out), unused=unused)
