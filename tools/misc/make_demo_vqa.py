"""Write demo question-answer pairs (LAVIS VQA layout) for the captioned demo data.

    python tools/misc/make_demo_vqa.py data/demo_captions

Reads ``annotations/captions_{train,val}.json`` (with the image attributes)
and writes ``annotations/vqa_{train,val}.json``: three questions per image
(shape, colour, position of the shape), answered from the attributes
(``mmmim.datasets.make_demo_vqa``).
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
from mmmim.datasets import make_demo_vqa  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('root', help='captioned demo data root (tools/misc/make_demo_data.py)')
    args = parser.parse_args(argv)
    counts = make_demo_vqa(args.root)
    print(f'wrote {counts["train"]} train and {counts["val"]} val questions under '
          f'{osp.join(args.root, "annotations")}')


if __name__ == '__main__':
    main()
