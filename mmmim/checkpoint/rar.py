"""RAR generator checkpoints: the official ``rar_{b,l,xl,xxl}.bin`` and mmmim's own."""
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import print_log
from torch import nn

from .convert import unwrap
from .io import read_checkpoint

# The top-level names of the official RAR generator (modeling/rar.py of bytedance/1d-tokenizer).
RAR_ROOTS = ('cls_token', 'embeddings.', 'pos_embed', 'target_aware_pos_embed',
             'timesteps_embeddings', 'blocks.', 'adaln_before_head.', 'lm_head.')


def rar_generator_weights(ckpt: dict, src: str = 'checkpoint') -> Tuple[Dict[str, torch.Tensor], str]:
    """The generator's tensors of a checkpoint dict in the official layout and which layout it was.

    Official files are a flat state dict of the generator; mmmim files
    (``tools/train.py`` checkpoints of the ``RAR`` algorithm) hold it under
    ``generator.`` inside ``state_dict``.
    """
    sd = unwrap(ckpt)
    if any(k.startswith('generator.') for k in sd):
        return {k[len('generator.'):]: v for k, v in sd.items() if k.startswith('generator.')}, 'mmmim'
    if 'target_aware_pos_embed' in sd:
        return dict(sd), 'official RAR'
    raise ValueError(f'{src} is not a RAR generator checkpoint (no target_aware_pos_embed, no '
                     f'generator.* keys); first keys: {", ".join(list(sd)[:6])}')


def load_rar_generator(module: nn.Module, checkpoint: str, allow_pickle: bool = False,
                       contents: Optional[dict] = None) -> Dict:
    """Load an official or mmmim RAR generator file into ``module``, strictly and loudly
    (``contents``: the file already read, to read a large file once)."""
    if contents is None:
        contents = read_checkpoint(checkpoint, allow_pickle=allow_pickle)
    sd, layout = rar_generator_weights(contents, checkpoint)
    own = module.state_dict()
    missing = sorted(set(own) - set(sd))
    unexpected = sorted(set(sd) - set(own))
    wrong = [f'{k} {tuple(sd[k].shape)} vs {tuple(own[k].shape)}'
             for k in sorted(set(own) & set(sd)) if sd[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        def few(keys):
            return f'{keys[:6] or "none"}{" ..." if len(keys) > 6 else ""}'
        raise KeyError(f'{checkpoint} ({layout} layout) does not fit {type(module).__name__}: '
                       f'missing {few(missing)}, unexpected {few(unexpected)}, wrong shapes '
                       f'{few(wrong)}. Check arch, codebook_size, num_classes and image_seq_len')
    module.load_state_dict(sd, strict=True)
    print_log(f'loaded {len(sd)} tensors from {checkpoint} ({layout} layout) into '
              f'{type(module).__name__}', logger='current')
    return dict(missing=[], unexpected=[], layout=layout)
