"""Official BEiT / MAE weights to mmseg's backbone layout, as mmseg's own script.

    python tools/model_converters/beit2mmseg.py SRC DST [--force]

Same arguments and output layout as mmsegmentation's
``tools/model_converters/beit2mmseg.py``; in addition, a shared relative
position table is copied into every layer, every dropped key is reported,
and an existing DST is kept unless --force.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from convert import convert  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description='Convert official BEiT / MAE keys to mmseg')
    parser.add_argument('src', help='src model path or url')
    parser.add_argument('dst', help='save path')
    parser.add_argument('--force', action='store_true', help='overwrite DST')
    args = parser.parse_args(argv)
    convert(args.src, args.dst, dst_format='mmseg', force=args.force)


if __name__ == '__main__':
    main()
