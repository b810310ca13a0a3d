"""Loading any supported checkpoint into an mmmim module, loudly."""
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from mmmim.models.layers.decomposed_rel_pos import resize_rel_pos
from .convert import to_mmmim, unwrap
from .io import read_checkpoint
from .pickled_modules import read_dalle_encoder
from .resize import expand_shared_rel_pos_bias, resize_rel_pos_table

# Missing keys a load accepts (freshly initialised, reported): a pooling norm
# or classifier that a pretraining checkpoint does not have.
ALLOWED_MISSING = ('fc_norm.', 'norm.', 'head.')
# Unexpected keys a load accepts (reported): parts of a pretraining model
# that the target has no place for, and the class token of a file loaded into
# a ViT built without one (ViTDet's windowed backbone).
ALLOWED_UNEXPECTED = ('mask_token', 'norm.', 'fc_norm.', 'head.', 'cls_token')
# Missing keys accepted when the file has no key of the kind at all: the
# relative position tables (BEiT's, ViTDet's decomposed ones) and layer scales
# that MAE's segmentation and detection recipes add to an MAE encoder.
NEW_IF_ABSENT = ('relative_position_bias_table', 'rel_pos_h', 'rel_pos_w', 'gamma_1', 'gamma_2')


def _adapt_to(module: nn.Module, sd: Dict[str, torch.Tensor]) -> Tuple[Dict, List[str]]:
    """Shared -> per-layer relative position tables and table resizing, for ``module``.

    BEiT tables are resized to their block's grid (``resize_rel_pos_table``),
    decomposed ones (``rel_pos_h`` / ``rel_pos_w``) linearly to the block's
    length, as detectron2's ``get_rel_pos``.
    """
    notes = []
    target = module.state_dict()
    shared = 'rel_pos_bias.relative_position_bias_table'
    if shared in sd and shared not in target and 'blocks.0.attn.relative_position_bias_table' in target:
        sd = expand_shared_rel_pos_bias(sd, len(module.blocks))
        notes.append(f'expanded the shared relative position table into {len(module.blocks)} layers')
    for k, v in list(sd.items()):
        if k.endswith('relative_position_bias_table') and k in target and v.shape != target[k].shape:
            window = module.get_submodule(k.rsplit('.', 1)[0]).window  # the table's own grid
            sd[k] = resize_rel_pos_table(v, window)
            notes.append(f'resized {k} from {tuple(v.shape)} to {tuple(sd[k].shape)}')
        if k.endswith(('.rel_pos_h', '.rel_pos_w')) and k in target and v.shape != target[k].shape:
            if v.ndim != 2 or v.shape[1] != target[k].shape[1]:
                raise ValueError(f'cannot resize {k} of shape {tuple(v.shape)} to '
                                 f'{tuple(target[k].shape)}: the head widths differ')
            sd[k] = resize_rel_pos(v, target[k].shape[0])
            notes.append(f'resized {k} from {tuple(v.shape)} to {tuple(sd[k].shape)}')
    return sd, notes


def load_pretrained(module: nn.Module,
                    checkpoint: str,
                    prefix: Optional[str] = 'backbone.',
                    allow_pickle: bool = False) -> Dict[str, List[str]]:
    """Load ``checkpoint`` (any supported layout, file or URL) into ``module``.

    The file is converted to mmmim's key space, the ``prefix`` part (e.g.
    ``backbone.``; empty or None for a whole model) is taken, relative
    position tables are expanded / resized and position embeddings resized
    for the module. Missing and unexpected keys are logged; any outside
    the documented sets (``ALLOWED_MISSING`` / ``ALLOWED_UNEXPECTED``) is an
    error naming them, and nothing is loaded then.

    Returns:
        ``dict(missing=..., unexpected=..., dropped=..., notes=...)``; the
        same is logged.
    """
    converted = to_mmmim(read_checkpoint(checkpoint, allow_pickle=allow_pickle))
    prefix = prefix or ''
    sd = {k[len(prefix):]: v for k, v in converted.state_dict.items() if k.startswith(prefix)}
    if not sd:
        raise KeyError(f'{checkpoint}: no keys under prefix {prefix!r} after conversion from '
                       f'the {converted.src_format} layout')
    sd, notes = _adapt_to(module, sd)
    target = set(module.state_dict())
    missing = sorted(target - set(sd))
    unexpected = sorted(set(sd) - target)
    new_kinds = tuple(kind for kind in NEW_IF_ABSENT if not any(kind in k for k in sd))
    bad_missing = [k for k in missing
                   if not k.startswith(ALLOWED_MISSING) and not any(n in k for n in new_kinds)]
    bad_unexpected = [k for k in unexpected if not k.startswith(ALLOWED_UNEXPECTED)]
    if bad_missing or bad_unexpected:
        raise KeyError(
            f'{checkpoint} ({converted.src_format} layout) does not fit {type(module).__name__}: '
            f'missing {bad_missing or "none"}, unexpected {bad_unexpected or "none"}. Check the '
            'model options (arch, rel_pos_bias, pos_embed, qv_bias, layer scale) against the file')
    module.load_state_dict({k: v for k, v in sd.items() if k in target}, strict=False)
    report = [f'loaded {len(sd) - len(unexpected)} tensors from {checkpoint} '
              f'({converted.src_format} layout, prefix {prefix!r}) into {type(module).__name__}']
    report += notes
    if converted.dropped:
        reasons = sorted({r for _, r in converted.dropped})
        report.append(f'dropped {len(converted.dropped)} keys: ' + '; '.join(reasons))
    if missing:
        report.append(f'missing (freshly initialised): {", ".join(missing)}')
    if unexpected:
        report.append(f'unexpected (ignored): {", ".join(unexpected)}')
    print_log('\n  '.join(report), logger='current')
    return dict(missing=missing, unexpected=unexpected,
                dropped=[k for k, _ in converted.dropped], notes=notes)


def vqkd_from_official(sd: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Official VQ-KD keys to mmmim's: the ViTs' final ``fc_norm`` is the mmmim ViT's ``norm``."""
    return {k.replace('encoder.fc_norm.', 'encoder.norm.').replace('decoder.fc_norm.', 'decoder.norm.'): v
            for k, v in sd.items()}


def load_tokenizer(module: nn.Module, checkpoint: str, allow_pickle: bool = False) -> Dict[str, List[str]]:
    """Load a frozen tokenizer's weights (DALL-E ``encoder.pkl``, VQ-KD, mmmim), strictly and loudly.

    A ``.pkl`` file is read as a pickled DALL-E module through the restricted
    reader; anything else as a checkpoint (weights under ``model`` /
    ``module`` / ``state_dict`` or flat; official VQ-KD names are mapped). Keys under the module's
    ``checkpoint_ignore`` prefixes (parts of the file the module does not
    build, e.g. the VQ-KD teacher) are dropped and reported; any other
    mismatch is an error naming the keys.
    """
    if checkpoint.endswith('.pkl'):
        sd, layout = read_dalle_encoder(checkpoint), 'pickled DALL-E'
    else:
        sd, layout = unwrap(read_checkpoint(checkpoint, allow_pickle=allow_pickle)), 'state dict'
        if any('.fc_norm.' in k for k in sd):
            sd, layout = vqkd_from_official(sd), 'official VQ-KD'
    ignore = tuple(getattr(module, 'checkpoint_ignore', ()))
    target = set(module.state_dict())
    dropped = sorted(k for k in sd if k not in target and k.startswith(ignore))
    missing = sorted(target - set(sd))
    unexpected = sorted(set(sd) - target - set(dropped))
    shapes = {k: v.shape for k, v in module.state_dict().items()}
    wrong = [f'{k} {tuple(sd[k].shape)} vs {tuple(shapes[k])}'
             for k in sorted(target & set(sd)) if sd[k].shape != shapes[k]]
    if missing or unexpected or wrong:
        def few(keys):
            return f'{keys[:6] or "none"}{" ..." if len(keys) > 6 else ""}'
        raise KeyError(f'{checkpoint} ({layout}) does not fit {type(module).__name__}: missing '
                       f'{few(missing)}, unexpected {few(unexpected)}, wrong shapes {few(wrong)}. '
                       'Check the tokenizer options against the file')
    module.load_state_dict({k: v for k, v in sd.items() if k in target}, strict=True)
    report = f'loaded {len(target)} tensors from {checkpoint} ({layout}) into {type(module).__name__}'
    if dropped:
        report += f'\n  dropped {len(dropped)} keys not used by the tokenizer: ' + ', '.join(
            sorted({k.split('.')[0] for k in dropped}))
    print_log(report, logger='current')
    return dict(missing=[], unexpected=[], dropped=dropped)
