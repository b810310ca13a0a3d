from .convert import FORMATS, Converted, detect_format, to_mmmim, to_mmseg, to_timm, unwrap
from .io import read_checkpoint, write_checkpoint
from .load import load_pretrained, load_tokenizer
from .pickled_modules import read_dalle_encoder
from .rar import load_rar_generator, rar_generator_weights
from .resize import expand_shared_rel_pos_bias, resize_rel_pos_table
from .safe_load import allow_mmengine_checkpoint_types

__all__ = [
    'FORMATS', 'Converted', 'detect_format', 'to_mmmim', 'to_mmseg', 'to_timm', 'unwrap',
    'read_checkpoint', 'write_checkpoint', 'load_pretrained', 'load_tokenizer', 'read_dalle_encoder', 'expand_shared_rel_pos_bias',
    'resize_rel_pos_table', 'allow_mmengine_checkpoint_types', 'load_rar_generator',
    'rar_generator_weights'
]
from .hf import (HF_FORMATS, from_hf, hf_model_cfg, hf_options, read_hf_folder, to_hf,
                 write_hf_folder)

__all__ += [
    'HF_FORMATS', 'from_hf', 'hf_model_cfg', 'hf_options', 'read_hf_folder', 'to_hf',
    'write_hf_folder'
]
from .blip import (BLIP_LAYOUTS, HF_BLIP_FORMATS, blip_to_hf, blip_to_official, detect_blip_layout,
                   load_blip, to_blip_mmmim)

__all__ += [
    'BLIP_LAYOUTS', 'HF_BLIP_FORMATS', 'blip_to_hf', 'blip_to_official', 'detect_blip_layout',
    'load_blip', 'to_blip_mmmim'
]
