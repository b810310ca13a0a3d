"""Write the bundled demo data (synthetic, no download).

    python tools/misc/make_demo_data.py [data/demo] [--per-class 128] [--size 64] [--force]
    python tools/misc/make_demo_data.py data/demo_ade20k --layout ade20k
    python tools/misc/make_demo_data.py data/demo_coco --layout coco
    python tools/misc/make_demo_data.py data/demo_captions --layout captions
    python tools/misc/make_demo_data.py data/realsize --real-size [500x375] [--per-class 512]

``imagenet`` layout: class folders for pretraining and classification;
``ade20k`` layout: images and label maps for segmentation; ``coco`` layout:
images and instance annotations (polygons) for detection; ``captions``
layout: images with COCO-captions style captions and their attributes (shape,
colour, background, position) for generation and vision-language. ``--real-size``
writes ImageNet-like photographs instead (by default 500x375, JPEG quality
90, about 100 KB each; train split only) for the data loader benchmark
(tools/analysis_tools/benchmark_dataloader.py).
"""
import argparse
import os
import os.path as osp
import shutil

from mmmim.datasets.demo import (CLASSES, make_demo_ade20k, make_demo_captions, make_demo_coco,
                                 make_demo_images, make_realsize_images)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', nargs='?', default='data/demo', help='output folder')
    parser.add_argument('--per-class', type=int, default=None,
                        help='train images per class (default 128; 512 with --real-size)')
    parser.add_argument('--val-per-class', type=int, default=16, help='val images per class')
    parser.add_argument('--size', type=int, default=64, help='image side in pixels')
    parser.add_argument('--real-size', nargs='?', const='500x375', metavar='WxH',
                        help='ImageNet-like photographs at quality 90, 500x375 unless given '
                             '(imagenet layout, train only)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--layout', choices=['imagenet', 'ade20k', 'coco', 'captions'], default='imagenet')
    parser.add_argument('--force', action='store_true', help='replace an existing folder')
    args = parser.parse_args(argv)
    if osp.exists(args.out) and os.listdir(args.out):
        if not args.force:
            raise SystemExit(f'{args.out} exists and is not empty; pass --force to replace it')
        shutil.rmtree(args.out)
    if args.real_size:
        if args.layout != 'imagenet':
            raise SystemExit('--real-size writes the imagenet layout only')
        w, h = (int(v) for v in args.real_size.lower().split('x'))
        n = make_realsize_images(args.out, args.per_class or 512, size=(h, w), seed=args.seed)
        print(f'wrote {n} real-size ({w}x{h}, quality 90) train images of classes '
              f'{", ".join(CLASSES)} to {args.out}')
        return
    if args.layout == 'coco':
        counts = make_demo_coco(args.out, seed=args.seed)
        print(f'wrote {counts["train"]} train2017 and {counts["val"]} val2017 images with '
              f'instance annotations in COCO layout to {args.out}')
        return
    if args.layout == 'captions':
        # shapes are drawn at random: --per-class sets the split sizes, in images per shape class
        counts = make_demo_captions(args.out, len(CLASSES) * (args.per_class or 128),
                                    len(CLASSES) * args.val_per_class, args.size, args.seed)
        print(f'wrote {counts["train"]} train and {counts["val"]} val captioned images '
              f'(COCO-captions layout) to {args.out}')
        return
    if args.layout == 'ade20k':
        counts = make_demo_ade20k(args.out, seed=args.seed)
        print(f'wrote {counts["training"]} training and {counts["validation"]} validation '
              f'images with label maps in ADE20K layout to {args.out}')
        return
    counts = make_demo_images(args.out, args.per_class or 128, args.val_per_class, args.size, args.seed)
    print(f'wrote {counts["train"]} train and {counts["val"]} val images of classes '
          f'{", ".join(CLASSES)} to {args.out}')


if __name__ == '__main__':
    main()
