"""Convert a checkpoint between layouts.

    python tools/model_converters/convert.py SRC DST [--src-format auto]
        [--dst-format mmmim|timm|mmseg] [--force] [--allow-pickle]

SRC is a file or URL in any supported layout (official MAE / BEiT / BEiT v2,
timm, mmpretrain / mmselfsup, mmseg, mmmim). DST ending in ``.safetensors``
is written as safetensors. Output is written atomically and never replaces
an existing file without --force.
"""
import argparse
import os.path as osp

from mmmim.checkpoint import (FORMATS, read_checkpoint, to_mmmim, to_mmseg, to_timm,
                              write_checkpoint)


def convert(src, dst, src_format='auto', dst_format='mmmim', force=False, allow_pickle=False):
    if osp.exists(dst) and not force:  # before the (possibly long) read
        raise SystemExit(f'{dst} exists; pass --force to overwrite it')
    print(f'reading {src}')
    converted = to_mmmim(read_checkpoint(src, allow_pickle=allow_pickle), src_format)
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
    parser.add_argument('src', help='source file or URL')
    parser.add_argument('dst', help='output file (.pth or .safetensors)')
    parser.add_argument('--src-format', default='auto', choices=('auto', ) + FORMATS)
    parser.add_argument('--dst-format', default='mmmim', choices=('mmmim', 'timm', 'mmseg'))
    parser.add_argument('--force', action='store_true', help='overwrite DST')
    parser.add_argument('--allow-pickle', action='store_true',
                        help='load SRC with full unpickling (runs code from the file: trusted '
                        'files only)')
    args = parser.parse_args(argv)
    convert(args.src, args.dst, args.src_format, args.dst_format, args.force, args.allow_pickle)


if __name__ == '__main__':
    main()
