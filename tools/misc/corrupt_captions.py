"""Replace a fraction of a caption set's captions by captions of other images (a noisy copy).

    python tools/misc/corrupt_captions.py ANN_JSON OUT_JSON --noisy NOISY_JSON
        [--fraction 0.3] [--seed 0] [--force]

OUT_JSON is the LAVIS / BLIP list (``image``, ``caption``, ``image_id``) with
``--fraction`` of all captions drawn at random and permuted among themselves;
NOISY_JSON lists the ``[image_id, caption]`` pairs that are now wrong (a
caption that lands on an image it describes is not), for ``capfilt.py --noisy``.
"""
import argparse
import json
import os.path as osp
import random
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

from mmmim.datasets.captions import load_caption_annotations  # noqa: E402
from mmmim.utils import atomic_write  # noqa: E402


def corrupt(entries, fraction: float, seed: int = 0):
    """LAVIS entries with ``fraction`` of the captions moved to other images, and the wrong pairs."""
    pairs = [(e, c) for e in entries for c in e['captions']]
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(pairs)), round(fraction * len(pairs))))
    moved = [pairs[i][1] for i in chosen]
    rng.shuffle(moved)
    out, noisy = [], []
    replace = dict(zip(chosen, moved))
    for i, (e, c) in enumerate(pairs):
        caption = replace.get(i, c)
        out.append(dict(image=e['image'], caption=caption, image_id=e['image_id']))
        if caption not in e['captions']:
            noisy.append([e['image_id'], caption])
    return out, noisy


def main(argv=None):
    parser = argparse.ArgumentParser(description='Shuffle a fraction of the captions of a set')
    parser.add_argument('ann')
    parser.add_argument('out')
    parser.add_argument('--noisy', required=True, help='where to list the wrong (image_id, caption)')
    parser.add_argument('--fraction', type=float, default=0.3)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true')
    args = parser.parse_args(argv)
    if not 0.0 < args.fraction <= 1.0:
        parser.error('--fraction must be in (0, 1]')
    out, noisy = corrupt(load_caption_annotations(args.ann), args.fraction, args.seed)
    for path, obj in ((args.out, out), (args.noisy, noisy)):
        def write(tmp, obj=obj):
            with open(tmp, 'w') as f:
                json.dump(obj, f, indent=1)
        atomic_write(path, write, force=args.force)
    print(f'{len(noisy)} of {len(out)} captions now describe another image; wrote {args.out} '
          f'and {args.noisy}')


if __name__ == '__main__':
    main()
