"""Hugging Face ``transformers`` layouts: ViTMAE, BEiT and Data2VecVision folders.

mmmim's ViT (``backbone.*``) and MAE decoder (``neck.*``) map one to one onto
``ViTMAEModel`` / ``ViTMAEForPreTraining`` and ``BeitModel`` /
``Data2VecVisionModel``: the fused ``qkv`` projection is split into
``query`` / ``key`` / ``value`` (and joined back), the rest is renamed. A
folder holds ``config.json`` and ``model.safetensors``, which
``from_pretrained(folder)`` opens offline. transformers is not imported here:
the tests use it as the independent reference.
"""
import json
import math
import os
import os.path as osp
import re
import tempfile
from typing import Dict, List, Optional, Tuple

import torch

from .convert import Converted, StateDict

HF_FORMATS = ('hf-vitmae', 'hf-beit', 'hf-data2vec-vision')
_MODEL_TYPES = {'hf-vitmae': 'vit_mae', 'hf-beit': 'beit', 'hf-data2vec-vision': 'data2vec-vision'}
_BEIT_CLASSES = {'beit': 'BeitModel', 'data2vec-vision': 'Data2VecVisionModel'}
# Prefix of the base model inside transformers' task models (``BeitForImageClassification``, ...).
_BASE_PREFIXES = {'vit_mae': 'vit.', 'beit': 'beit.', 'data2vec-vision': 'data2vec_vision.'}
# Heads of the standard ViT widths (Ti / S / B / L, H) and of MAE's 512-d decoder,
# used when neither the weights nor the caller tell.
DEFAULT_HEADS = {192: 3, 384: 6, 768: 12, 1024: 16, 1280: 16}
DEFAULT_DECODER_HEADS = {512: 16}

# Block parameters, mmmim name -> transformers name (after ``blocks.N.`` / ``encoder.layer.N.``).
_BLOCK = {
    'norm1.weight': 'layernorm_before.weight',
    'norm1.bias': 'layernorm_before.bias',
    'attn.proj.weight': 'attention.output.dense.weight',
    'attn.proj.bias': 'attention.output.dense.bias',
    'norm2.weight': 'layernorm_after.weight',
    'norm2.bias': 'layernorm_after.bias',
    'mlp.fc1.weight': 'intermediate.dense.weight',
    'mlp.fc1.bias': 'intermediate.dense.bias',
    'mlp.fc2.weight': 'output.dense.weight',
    'mlp.fc2.bias': 'output.dense.bias',
    'gamma_1': 'lambda_1',
    'gamma_2': 'lambda_2',
    'attn.relative_position_bias_table':
    'attention.attention.relative_position_bias.relative_position_bias_table',
}
_QKV = 'attention.attention.'
_EMBED = {
    'cls_token': 'embeddings.cls_token',
    'mask_token': 'embeddings.mask_token',
    'pos_embed': 'embeddings.position_embeddings',
    'patch_embed.proj.weight': 'embeddings.patch_embeddings.projection.weight',
    'patch_embed.proj.bias': 'embeddings.patch_embeddings.projection.bias',
}
_SHARED_TABLE = 'rel_pos_bias.relative_position_bias_table'
_HF_SHARED_TABLE = 'encoder.relative_position_bias.relative_position_bias_table'
_DECODER = ('decoder_embed.', 'mask_token', 'decoder_pos_embed', 'decoder_norm.', 'decoder_pred.')


def _strip(sd: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def _blocks(sd: StateDict, prefix: str) -> List[StateDict]:
    """``prefix.N.*`` tensors grouped by block, in order."""
    pattern = re.compile(re.escape(prefix) + r'(\d+)\.')
    ids = sorted({int(m.group(1)) for m in map(pattern.match, sd) if m})
    if ids != list(range(len(ids))):
        raise KeyError(f'blocks under {prefix!r} are not numbered 0..N-1: {ids}')
    return [_strip(sd, f'{prefix}{i}.') for i in ids]


def _heads(width: int, given: Optional[int], tables: List[torch.Tensor], defaults: Dict[int, int],
           option: str) -> int:
    if given:
        return int(given)
    if tables:
        return tables[0].shape[1]  # relative position table [rows, heads]
    if width in defaults:
        return defaults[width]
    raise ValueError(f'cannot tell the attention heads of a {width}-wide transformer from its '
                     f'weights: pass {option}')


def _side(num_patches: int, what: str) -> int:
    side = math.isqrt(num_patches)
    if side * side != num_patches:
        raise ValueError(f'{what} covers {num_patches} patches, not a square grid; the '
                         'Hugging Face configs here describe square inputs')
    return side


def _no_place(key: str, kind: str) -> KeyError:
    hint = (' (layer scale, relative position bias and mean pooling need '
            '--dst-format hf-beit)') if kind == 'vit_mae' else ''
    return KeyError(f'{key} has no place in the {kind} layout{hint}')


def _block_to_hf(blk: StateDict, name: str, kind: str) -> Tuple[StateDict, List[Tuple[str, str]]]:
    """One mmmim block in transformers' names; ``kind`` is ``'vit_mae'`` or ``'beit'``."""
    blk = dict(blk)
    out, dropped = {}, []
    dim = blk['attn.qkv.weight'].shape[1]
    for part, w in zip(('query', 'key', 'value'), blk.pop('attn.qkv.weight').chunk(3)):  # 3 x [C, C]
        out[f'{_QKV}{part}.weight'] = w
    fused = blk.pop('attn.qkv.bias', None)
    q_bias, v_bias = blk.pop('attn.q_bias', None), blk.pop('attn.v_bias', None)
    if fused is not None:
        q_bias, k_bias, v_bias = fused.chunk(3)
    else:
        k_bias = None
    if kind == 'vit_mae':
        if q_bias is not None:  # one bias flag for q, k, v: BEiT's absent key bias is zero
            zero = q_bias.new_zeros(dim)
            for part, b in zip(('query', 'key', 'value'), (q_bias, k_bias, v_bias)):
                out[f'{_QKV}{part}.bias'] = zero if b is None else b
    else:
        zero = blk['attn.proj.weight'].new_zeros(dim)
        out[f'{_QKV}query.bias'] = zero if q_bias is None else q_bias
        out[f'{_QKV}value.bias'] = zero if v_bias is None else v_bias
        if k_bias is not None:
            dropped.append((f'{name}.attn.qkv.bias[key]', 'BEiT has no key bias; a key bias adds '
                            'the same amount to all logits of a query, which softmax ignores'))
    for k, v in blk.items():
        if k not in _BLOCK or (kind == 'vit_mae' and k.startswith(('gamma_', 'attn.relative'))):
            raise _no_place(f'{name}.{k}', kind)
        out[_BLOCK[k]] = v
    return out, dropped


def _encoder_to_hf(bb: StateDict, kind: str) -> Tuple[StateDict, List[Tuple[str, str]]]:
    out, dropped = {}, []
    for k, v in bb.items():
        if k == 'mask_token' and kind == 'vit_mae':
            dropped.append(('backbone.mask_token', 'ViTMAEModel has no mask token in the encoder'))
        elif k in _EMBED:
            out[_EMBED[k]] = v
        elif k.startswith('norm.'):
            out['layernorm.' + k[len('norm.'):]] = v
        elif k.startswith('fc_norm.') and kind != 'vit_mae':
            out['pooler.layernorm.' + k[len('fc_norm.'):]] = v
        elif k == _SHARED_TABLE and kind != 'vit_mae':
            out[_HF_SHARED_TABLE] = v
        elif not k.startswith('blocks.'):
            raise _no_place(f'backbone.{k}', kind)
    for i, blk in enumerate(_blocks(bb, 'blocks.')):
        mapped, lost = _block_to_hf(blk, f'backbone.blocks.{i}', kind)
        out.update({f'encoder.layer.{i}.{k}': v for k, v in mapped.items()})
        dropped += lost
    return out, dropped


def _geometry(bb: StateDict) -> dict:
    """Width, depth, MLP width, patch size, channels and the grid side of a backbone."""
    if 'patch_embed.proj.weight' not in bb:
        raise KeyError('no backbone.patch_embed.proj.weight: not an mmmim ViT state dict')
    C, in_ch, p, _ = bb['patch_embed.proj.weight'].shape
    blocks = _blocks(bb, 'blocks.')
    if not blocks:
        raise KeyError('no backbone.blocks.N.* tensors')
    own = 'attn.relative_position_bias_table'
    tables = [bb[_SHARED_TABLE]] if _SHARED_TABLE in bb else [b[own] for b in blocks if own in b]
    if 'pos_embed' in bb:
        side = _side(bb['pos_embed'].shape[1] - int('cls_token' in bb), 'backbone.pos_embed')
    elif tables:
        side = (_side(tables[0].shape[0] - 3, 'the relative position table') + 1) // 2
    else:
        raise KeyError('the backbone has neither pos_embed nor a relative position table: '
                       'its input size is unknown')
    return dict(C=C, in_ch=in_ch, p=p, side=side, depth=len(blocks), tables=tables,
                mlp=blocks[0]['mlp.fc1.weight'].shape[0])


def to_hf(sd: StateDict,
          dst_format: str,
          num_heads: Optional[int] = None,
          decoder_num_heads: Optional[int] = None,
          layer_norm_eps: float = 1e-6,
          mask_ratio: float = 0.75,
          norm_pix_loss: bool = False) -> Tuple[dict, StateDict, List[Tuple[str, str]]]:
    """An mmmim state dict as a transformers ``config.json`` dict and state dict.

    Args:
        sd: mmmim keys (``backbone.*``, ``neck.*`` for MAE's decoder).
        dst_format: ``'hf-vitmae'`` (``ViTMAEModel``, or ``ViTMAEForPreTraining``
            with the decoder), ``'hf-beit'`` (``BeitModel``) or
            ``'hf-data2vec-vision'`` (``Data2VecVisionModel``).
        num_heads: Encoder heads (default: from a relative position table,
            else the standard ViT width table).
        decoder_num_heads: MAE decoder heads (default 16 for a 512-d decoder).
        layer_norm_eps: LayerNorm epsilon of the model (mmmim's default).
        mask_ratio: ``mask_ratio`` written for ViTMAE.
        norm_pix_loss: ``norm_pix_loss`` written for ViTMAE.

    Returns:
        ``(config, state_dict, dropped)``, dropped as ``(key, reason)`` pairs.
    """
    if dst_format not in HF_FORMATS:
        raise ValueError(f'unknown Hugging Face layout {dst_format!r}; choose from {HF_FORMATS}')
    kind = _MODEL_TYPES[dst_format]
    bb = _strip(sd, 'backbone.')
    g = _geometry(bb)
    if 'cls_token' not in bb:
        raise KeyError(f'the {kind} layout needs a class token; this ViT has none '
                       '(with_cls_token=False)')
    if kind == 'vit_mae' and 'pos_embed' not in bb:
        raise KeyError('ViTMAEModel needs backbone.pos_embed (absolute positions); this ViT has '
                       'none: use --dst-format hf-beit')
    heads = _heads(g['C'], num_heads, g['tables'], DEFAULT_HEADS, '--num-heads (num_heads=)')
    out, dropped = _encoder_to_hf(bb, 'vit_mae' if kind == 'vit_mae' else 'beit')
    config = dict(model_type=kind, hidden_size=g['C'], num_hidden_layers=g['depth'],
                  num_attention_heads=heads, intermediate_size=g['mlp'], hidden_act='gelu',
                  hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                  layer_norm_eps=layer_norm_eps, image_size=g['side'] * g['p'], patch_size=g['p'],
                  num_channels=g['in_ch'])
    neck = _strip(sd, 'neck.')
    decoder = kind == 'vit_mae' and any(k.startswith(_DECODER) for k in neck)
    if kind == 'vit_mae':
        if 'norm.weight' not in bb:
            raise KeyError('ViTMAEModel needs the final backbone.norm (a mean-pooled ViT '
                           'exports with --dst-format hf-beit)')
        config.update(qkv_bias=f'encoder.layer.0.{_QKV}query.bias' in out, mask_ratio=mask_ratio,
                      norm_pix_loss=norm_pix_loss, architectures=['ViTMAEModel'])
    else:
        if 'norm.weight' not in bb and 'fc_norm.weight' not in bb:
            raise KeyError('the backbone has neither a final norm nor fc_norm')
        has_layer_scale = 'blocks.0.gamma_1' in bb
        config.update(use_mask_token='mask_token' in bb,
                      use_absolute_position_embeddings='pos_embed' in bb,
                      use_shared_relative_position_bias=_SHARED_TABLE in bb,
                      use_relative_position_bias='blocks.0.attn.relative_position_bias_table' in bb,
                      layer_scale_init_value=0.1 if has_layer_scale else 0.0,
                      use_mean_pooling='norm.weight' not in bb,
                      architectures=[_BEIT_CLASSES[kind]])
    if decoder:
        dec_config, dec, dec_dropped = _decoder_to_hf(neck, decoder_num_heads)
        out = {'vit.' + k: v for k, v in out.items()}
        out.update({'decoder.' + k: v for k, v in dec.items()})
        config.update(dec_config, architectures=['ViTMAEForPreTraining'])
        dropped += dec_dropped
        kept = ('backbone.', 'neck.')
    else:
        kept = ('backbone.', )
    target = config['architectures'][0]
    dropped += [(k, f'not part of {target}') for k in sd if not k.startswith(kept)]
    return config, {k: v.contiguous() for k, v in out.items()}, dropped


def _decoder_to_hf(neck: StateDict, num_heads: Optional[int]):
    """MAE's decoder (``neck.*`` without the prefix): config entries, ``ViTMAEDecoder`` tensors
    and dropped keys."""
    out = {}
    for k, v in neck.items():
        if k.startswith(_DECODER):
            out[k] = v
        elif not k.startswith('decoder_blocks.'):
            raise KeyError(f'neck.{k} is not part of the MAE decoder')
    blocks = _blocks(neck, 'decoder_blocks.')
    dropped = []
    for i, blk in enumerate(blocks):
        mapped, lost = _block_to_hf(blk, f'neck.decoder_blocks.{i}', 'vit_mae')
        out.update({f'decoder_layers.{i}.{k}': v for k, v in mapped.items()})
        dropped += lost
    if not blocks:
        raise KeyError('the MAE decoder has no neck.decoder_blocks.N.* tensors')
    D = neck['decoder_embed.weight'].shape[0]
    config = dict(decoder_hidden_size=D, decoder_num_hidden_layers=len(blocks),
                  decoder_num_attention_heads=_heads(D, num_heads, [], DEFAULT_DECODER_HEADS,
                                                     '--decoder-num-heads (decoder_num_heads=)'),
                  decoder_intermediate_size=blocks[0]['mlp.fc1.weight'].shape[0])
    return config, out, dropped



def hf_options(model_cfg: dict) -> dict:
    """The :func:`to_hf` options that weights do not tell, from an mmmim model config dict:
    ``num_heads``, ``decoder_num_heads``, ``layer_norm_eps``, ``mask_ratio``, ``norm_pix_loss``."""
    backbone, neck, head = (model_cfg.get(k) or {} for k in ('backbone', 'neck', 'head'))
    opts = {}
    if isinstance(backbone.get('arch'), dict) and 'num_heads' in backbone['arch']:
        opts['num_heads'] = backbone['arch']['num_heads']
    if 'norm_eps' in backbone:
        opts['layer_norm_eps'] = backbone['norm_eps']
    if neck.get('type') == 'MAEDecoder':
        opts['decoder_num_heads'] = neck.get('decoder_num_heads', 16)
    if 'mask_ratio' in model_cfg:
        opts['mask_ratio'] = model_cfg['mask_ratio']
    if head.get('type') == 'PixelReconstructionHead':
        opts['norm_pix_loss'] = head.get('norm_pix', True)
    return opts


# ----------------------------------------------------------------- folders
def write_hf_folder(folder: str, config: dict, tensors: StateDict, force: bool = False) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``folder``.

    Either file existing is refused unless ``force``; each is written to a
    temporary file and renamed, nothing else in the folder is touched.
    """
    if osp.isfile(folder):
        raise FileExistsError(f'{folder} is a file; a Hugging Face model is a folder')
    existing = [n for n in ('config.json', 'model.safetensors') if osp.exists(osp.join(folder, n))]
    if existing and not force:
        raise FileExistsError(f'{folder} holds {" and ".join(existing)}; pass --force '
                              '(force=True) to replace them')
    os.makedirs(folder, exist_ok=True)
    from safetensors.torch import save_file

    def write(name, save):
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', dir=folder)
        os.close(fd)
        try:
            save(tmp)
            os.replace(tmp, osp.join(folder, name))
        except BaseException:
            os.unlink(tmp)
            raise

    # transformers refuses safetensors files without the 'format' metadata
    flat = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    write('model.safetensors', lambda path: save_file(flat, path, metadata={'format': 'pt'}))

    def dump_json(path):
        with open(path, 'w') as f:
            json.dump(config, f, indent=2, sort_keys=True)
            f.write('\n')

    write('config.json', dump_json)


def read_hf_folder(folder: str) -> Tuple[dict, StateDict]:
    """``config.json`` and the weights of a Hugging Face model folder.

    Weights are read from ``model.safetensors``, the shards listed in
    ``model.safetensors.index.json``, or ``pytorch_model.bin`` (weights-only).
    """
    config_path = osp.join(folder, 'config.json')
    if not osp.isfile(config_path):
        raise FileNotFoundError(f'{folder} has no config.json: not a Hugging Face model folder')
    with open(config_path) as f:
        config = json.load(f)
    from .io import read_checkpoint
    single = osp.join(folder, 'model.safetensors')
    index = osp.join(folder, 'model.safetensors.index.json')
    if osp.isfile(single):
        return config, read_checkpoint(single)
    if osp.isfile(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)['weight_map'].values()))
        sd = {}
        for shard in shards:
            sd.update(read_checkpoint(osp.join(folder, shard)))
        return config, sd
    if osp.isfile(osp.join(folder, 'pytorch_model.bin')):
        return config, read_checkpoint(osp.join(folder, 'pytorch_model.bin'))
    raise FileNotFoundError(f'{folder} has no model.safetensors, model.safetensors.index.json '
                            'or pytorch_model.bin')


# ------------------------------------------------------------ HF -> mmmim
_BLOCK_BACK = {v: k for k, v in _BLOCK.items()}
_EMBED_BACK = {v: k for k, v in _EMBED.items()}


def _block_from_hf(blk: StateDict, name: str) -> StateDict:
    """One ``ViTMAELayer`` / ``BeitLayer`` in mmmim's names."""
    blk = dict(blk)
    parts = ('query', 'key', 'value')
    out = {'attn.qkv.weight': torch.cat([blk.pop(f'{_QKV}{p}.weight') for p in parts])}  # [3C, C]
    biases = {p: blk.pop(f'{_QKV}{p}.bias', None) for p in parts}
    if biases['key'] is not None:  # ViTMAE: one fused bias
        out['attn.qkv.bias'] = torch.cat([biases[p] for p in parts])
    elif biases['query'] is not None:  # BEiT: q / v biases, no key bias
        out['attn.q_bias'], out['attn.v_bias'] = biases['query'], biases['value']
    for k, v in blk.items():
        if k.endswith('relative_position_index'):
            continue
        if k not in _BLOCK_BACK:
            raise KeyError(f'{name}.{k} has no place in mmmim\'s ViT block')
        out[_BLOCK_BACK[k]] = v
    return out


def _encoder_from_hf(sd: StateDict, model_type: str) -> Tuple[StateDict, List[Tuple[str, str]]]:
    out, dropped = {}, []
    for k, v in sd.items():
        if k in _EMBED_BACK:
            out[_EMBED_BACK[k]] = v
        elif k.startswith('layernorm.'):
            out['norm.' + k[len('layernorm.'):]] = v
        elif k.startswith('pooler.layernorm.'):
            out['fc_norm.' + k[len('pooler.layernorm.'):]] = v
        elif k == _HF_SHARED_TABLE:
            out[_SHARED_TABLE] = v
        elif k.endswith('relative_position_index'):
            dropped.append((k, 'buffer, recomputed from the patch grid'))
        elif not k.startswith('encoder.layer.'):
            raise KeyError(f'{k} is not part of the {model_type} base model')
    for i, blk in enumerate(_blocks(sd, 'encoder.layer.')):
        mapped = _block_from_hf(blk, f'encoder.layer.{i}')
        out.update({f'blocks.{i}.{k}': v for k, v in mapped.items()})
    return {'backbone.' + k: v for k, v in out.items()}, dropped


def from_hf(config: dict, sd: StateDict) -> Converted:
    """A transformers ViTMAE / BEiT / Data2VecVision state dict in mmmim's key space.

    The base model may sit under its prefix (``vit.``, ``beit.``,
    ``data2vec_vision.``: task models such as ``BeitForImageClassification``);
    task heads outside it are dropped, except ``BeitForMaskedImageModeling``'s
    ``layernorm``, the encoder's final norm, which becomes ``backbone.norm``.
    ViTMAE's decoder goes to ``neck.*`` (``MAEDecoder``).
    """
    model_type = config.get('model_type')
    if model_type not in _BASE_PREFIXES:
        raise ValueError(f'config.json model_type {model_type!r} is not one of '
                         f'{sorted(_BASE_PREFIXES)} (ViTMAE, BEiT, Data2VecVision)')
    if config.get('hidden_act', 'gelu') != 'gelu':
        raise ValueError(f"config.json hidden_act {config['hidden_act']!r}: mmmim's ViT uses "
                         "the exact GELU ('gelu')")
    prefix = _BASE_PREFIXES[model_type]
    if any(k.startswith(prefix) for k in sd):
        base = _strip(sd, prefix)
    else:
        roots = ('embeddings.', 'encoder.', 'layernorm.', 'pooler.')
        base = {k: v for k, v in sd.items() if k.startswith(roots)}
    rest = {k: v for k, v in sd.items() if not k.startswith(prefix) and k not in base}
    out, dropped = _encoder_from_hf(base, model_type)
    if model_type == 'vit_mae':
        dec = _strip(rest, 'decoder.')
        for k, v in dec.items():
            if k.startswith(_DECODER):
                out['neck.' + k] = v
            elif not k.startswith('decoder_layers.'):
                raise KeyError(f'decoder.{k} is not part of ViTMAEDecoder')
        for i, blk in enumerate(_blocks(dec, 'decoder_layers.')):
            out.update({f'neck.decoder_blocks.{i}.{k}': v
                        for k, v in _block_from_hf(blk, f'decoder.decoder_layers.{i}').items()})
        rest = {k: v for k, v in rest.items() if not k.startswith('decoder.')}
    elif 'lm_head.weight' in rest and 'backbone.norm.weight' not in out:
        for k in ('weight', 'bias'):  # BeitForMaskedImageModeling: the encoder's final norm
            out[f'backbone.norm.{k}'] = rest.pop(f'layernorm.{k}')
    dropped += [(k, f'task head of the {model_type} model, not part of the backbone') for k in rest]
    return Converted(out, 'hf-' + model_type, dropped)


def hf_model_cfg(config: dict, sd: StateDict) -> dict:
    """The mmmim model parts (``backbone``, and MAE's ``neck`` / ``head``) that hold
    :func:`from_hf`'s state dict ``sd`` strictly, as config dicts."""
    C, p, eps = config['hidden_size'], config['patch_size'], config.get('layer_norm_eps', 1e-12)
    image_size = config.get('image_size', 224)
    if not isinstance(image_size, int):
        raise ValueError(f'config.json image_size {image_size}: only square inputs are described')

    def arch(width, depth, heads, hidden):
        if hidden % width:
            raise ValueError(f'intermediate size {hidden} is not a whole multiple of {width}')
        return dict(embed_dim=width, depth=depth, num_heads=heads, mlp_ratio=float(hidden // width))

    common = dict(img_size=image_size, patch_size=p, in_channels=config.get('num_channels', 3),
                  norm_eps=eps)
    enc = arch(C, config['num_hidden_layers'], config['num_attention_heads'],
               config['intermediate_size'])
    if config['model_type'] == 'vit_mae':
        cfg = dict(backbone=dict(type='MAEViT', arch=enc, qkv_bias=config.get('qkv_bias', True),
                                 **common))
        if any(k.startswith('neck.') for k in sd):
            D = config['decoder_hidden_size']
            dec = arch(D, config['decoder_num_hidden_layers'],
                       config['decoder_num_attention_heads'], config['decoder_intermediate_size'])
            cfg['neck'] = dict(type='MAEDecoder', img_size=image_size, patch_size=p,
                               in_channels=common['in_channels'], embed_dim=C,
                               decoder_embed_dim=D, decoder_depth=dec['depth'],
                               decoder_num_heads=dec['num_heads'], mlp_ratio=dec['mlp_ratio'],
                               norm_eps=eps)
            cfg['head'] = dict(type='PixelReconstructionHead', patch_size=p,
                               norm_pix=config.get('norm_pix_loss', False))
            cfg['mask_ratio'] = config.get('mask_ratio', 0.75)
        return cfg
    shared = config.get('use_shared_relative_position_bias', False)
    per_layer = config.get('use_relative_position_bias', False)
    if shared and per_layer:
        raise ValueError('config.json asks for a shared and a per-layer relative position bias; '
                         "mmmim's ViT has one or the other")
    pooled = 'backbone.fc_norm.weight' in sd
    backbone = dict(
        type='BEiTViT' if 'backbone.mask_token' in sd else 'ViT', arch=enc,
        pos_embed='learned' if config.get('use_absolute_position_embeddings', False) else None,
        qkv_bias=False, qv_bias=True,
        rel_pos_bias='shared' if shared else 'per_layer' if per_layer else None,
        layer_scale_init_value=config.get('layer_scale_init_value', 0.1)
        if 'backbone.blocks.0.gamma_1' in sd else 0.0,
        out_type='avg_featmap' if pooled else 'raw',
        final_norm='backbone.norm.weight' in sd, **common)
    return dict(backbone=backbone)
