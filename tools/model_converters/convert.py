"""Convert a checkpoint between layouts.

    python tools/model_converters/convert.py SRC DST [--src-format auto]
        [--dst-format mmmim|timm|mmseg] [--force] [--allow-pickle]

SRC is a file or URL in any supported layout (official MAE / BEiT / BEiT v2,
timm, mmpretrain / mmselfsup, mmseg, mmmim), or a Hugging Face model folder
(ViTMAE, BEiT, Data2VecVision: config.json + weights). DST ending in
``.safetensors`` is written as safetensors. Output is written atomically and
never replaces an existing file without --force.

    python tools/model_converters/convert.py SRC DST_FOLDER
        --dst-format hf-vitmae|hf-beit|hf-data2vec-vision [--config CONFIG]
        [--num-heads N] [--decoder-num-heads N]

writes config.json + model.safetensors for transformers' ViTMAEModel (or
ViTMAEForPreTraining with MAE's decoder), BeitModel or Data2VecVisionModel.
Head counts and other settings the weights do not hold come from CONFIG
(the training config) or the options.
"""
import argparse
import os.path as osp

from mmmim.checkpoint import (FORMATS, read_checkpoint, to_mmmim, to_mmseg, to_timm,
                              write_checkpoint)
from mmmim.checkpoint.hf import (HF_FORMATS, from_hf, hf_model_cfg, hf_options, read_hf_folder,
                                 to_hf, write_hf_folder)


def read_source(src, src_format='auto', allow_pickle=False):
    """SRC (a checkpoint file / URL, or a Hugging Face model folder) in mmmim's key space."""
    if not osp.isdir(src):
        return to_mmmim(read_checkpoint(src, allow_pickle=allow_pickle), src_format)
    config, sd = read_hf_folder(src)
    converted = from_hf(config, sd)
    print(f'{src}: mmmim model parts that hold these weights: '
          f'{hf_model_cfg(config, converted.state_dict)}')
    return converted


def export_hf(converted, src, dst, dst_format, force=False, config=None, num_heads=None,
              decoder_num_heads=None):
    """Write ``converted`` as a Hugging Face model folder DST."""
    options = {}
    if config:
        from mmengine.config import Config
        options = hf_options(Config.fromfile(config).model)
    options.update({k: v for k, v in (('num_heads', num_heads),
                                      ('decoder_num_heads', decoder_num_heads)) if v})
    hf_config, sd, dropped = to_hf(converted.state_dict, dst_format, **options)
    print(f'{src}: {converted.src_format} layout -> {hf_config["architectures"][0]} '
          f'({len(sd)} tensors)')
    for key, reason in converted.dropped + dropped:
        print(f'  dropped {key}: {reason}')
    write_hf_folder(dst, hf_config, sd, force=force)
    print(f'wrote {dst}/config.json and {dst}/model.safetensors')


def convert(src, dst, src_format='auto', dst_format='mmmim', force=False, allow_pickle=False,
            config=None, num_heads=None, decoder_num_heads=None):
    if osp.exists(dst) and not force:  # before the (possibly long) read
        raise SystemExit(f'{dst} exists; pass --force to overwrite it')
    converted = read_source(src, src_format, allow_pickle)
    if dst_format in HF_FORMATS:
        return export_hf(converted, src, dst, dst_format, force, config, num_heads,
                         decoder_num_heads)
    sd = converted.state_dict
    if dst_format == 'timm':
        sd = to_timm(sd)
    elif dst_format == 'mmseg':
        sd = to_mmseg(sd)
    print(f'{src}: {converted.src_format} layout, {len(sd)} tensors -> {dst_format} layout')
    for key, reason in converted.dropped:
        print(f'  dropped {key}: {reason}')
    if dst_format == 'mmmim':
        obj = dict(state_dict=sd, meta=dict(converted_from=converted.src_format, source=src))
    elif dst_format == 'mmseg':
        obj = sd  # as mmseg's beit2mmseg.py writes it
    else:
        obj = dict(model=sd)  # as the official MAE / BEiT files
    write_checkpoint(obj, dst, force=force)
    print(f'wrote {dst}')


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert a checkpoint between layouts')
    parser.add_argument('src', help='source file or URL, or a Hugging Face model folder')
    parser.add_argument('dst', help='output file (.pth or .safetensors), or folder (hf-*)')
    parser.add_argument('--src-format', default='auto', choices=('auto', ) + FORMATS)
    parser.add_argument('--dst-format', default='mmmim',
                        choices=('mmmim', 'timm', 'mmseg') + HF_FORMATS)
    parser.add_argument('--config', help='training config of SRC (hf-*: head counts, norm eps, '
                        'mask ratio, norm_pix)')
    parser.add_argument('--num-heads', type=int, help='encoder attention heads (hf-*)')
    parser.add_argument('--decoder-num-heads', type=int, help='MAE decoder heads (hf-vitmae)')
    parser.add_argument('--force', action='store_true', help='overwrite DST')
    parser.add_argument('--allow-pickle', action='store_true',
                        help='load SRC with full unpickling (runs code from the file: trusted '
                        'files only)')
    args = parser.parse_args(argv)
    convert(args.src, args.dst, args.src_format, args.dst_format, args.force, args.allow_pickle,
            args.config, args.num_heads, args.decoder_num_heads)


if __name__ == '__main__':
    main()
