"""Show what an MAE checkpoint reconstructs.

    python tools/analysis_tools/visualize_reconstruction.py CONFIG CHECKPOINT IMG [IMG ...]
        --out recon.png [--seed 0] [--device cpu]

Each row: original | masked | reconstruction | reconstruction with the
visible patches pasted back.
"""
import argparse
import os
import os.path as osp
import tempfile

import cv2

from mmmim.apis import init_model, read_image, reconstruct_images


def main(argv=None):
    parser = argparse.ArgumentParser(description='MAE reconstruction grid')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('images', nargs='+', help='image files (or folders: their first files)')
    parser.add_argument('--out', required=True, help='output PNG')
    parser.add_argument('--max-images', type=int, default=8)
    parser.add_argument('--seed', type=int, default=0, help='seed of the random masks')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--force', action='store_true', help='overwrite --out')
    args = parser.parse_args(argv)
    if osp.exists(args.out) and not args.force:
        raise SystemExit(f'{args.out} exists; pass --force to overwrite it')
    paths = []
    for p in args.images:
        if osp.isdir(p):
            paths += sorted(osp.join(root, f) for root, _, files in os.walk(p) for f in files)
        elif osp.isfile(p):
            paths.append(p)
        else:
            raise FileNotFoundError(f'image not found: {p}')
    paths = paths[:args.max_images]
    model = init_model(args.config, args.checkpoint, args.device)
    size = model.backbone.img_size[0]
    grid = reconstruct_images(model, [read_image(p, size) for p in paths], args.seed)
    grid = cv2.resize(grid, None, fx=max(1, 256 // size), fy=max(1, 256 // size),
                      interpolation=cv2.INTER_NEAREST)
    out_dir = osp.dirname(osp.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.png', dir=out_dir)
    os.close(fd)
    if not cv2.imwrite(tmp, cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
        os.unlink(tmp)
        raise OSError(f'could not write {args.out}')
    os.replace(tmp, args.out)
    print(f'wrote {args.out}: {len(paths)} images x (original | masked | reconstruction | '
          'reconstruction + visible)')


if __name__ == '__main__':
    main()
