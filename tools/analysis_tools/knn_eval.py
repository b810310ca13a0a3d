"""Score a checkpoint by weighted k-NN on an image-folder dataset, without training.

    python tools/analysis_tools/knn_eval.py CONFIG [CHECKPOINT] --data-root data/demo
        [--k 20] [--temperature 0.07] [--feature cls|avg] [--device cpu]

DATA_ROOT holds ``train/<class>/*`` and ``val/<class>/*``. The backbone of
CONFIG's model (any of its supported checkpoint layouts; no checkpoint:
random initialisation) embeds centre crops at its input size; the class
token (``cls``) or the mean patch token (``avg``) is L2-normalised and each
validation image takes the weighted vote of its k nearest training images.
"""
import argparse

import numpy as np
import torch

from mmmim.apis import init_model, knn_classify, read_image, topk_accuracy
from mmmim.engine.knn_hook import list_image_folder
from mmmim.utils import Progress


@torch.no_grad()
def embed(model, items, feature: str, split: str, batch_size: int = 64) -> torch.Tensor:
    pre = model.data_preprocessor
    size = model.backbone.img_size[0]
    feats = []
    with Progress(len(items), f'embedding {split}', 'images') as progress:
        for start in range(0, len(items), batch_size):
            batch = items[start:start + batch_size]
            imgs = np.stack([read_image(path, size) for path, _ in batch])
            x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().to(pre.mean.device)
            out = model.backbone((x - pre.mean) / pre.std)[-1]
            if out.ndim == 3:  # tokens [B, 1 + L, C]
                out = out[:, 0] if feature == 'cls' else out[:, 1:].mean(dim=1)
            feats.append(out.flatten(1).cpu())
            progress.update(len(batch))
    return torch.cat(feats)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Weighted k-NN evaluation of a backbone')
    parser.add_argument('config')
    parser.add_argument('checkpoint', nargs='?', help='omit for a randomly initialised model')
    parser.add_argument('--data-root', required=True)
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--temperature', type=float, default=0.07)
    parser.add_argument('--feature', choices=['cls', 'avg'], default='cls')
    parser.add_argument('--seed', type=int, default=0, help='seed of a random initialisation')
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    model = init_model(args.config, args.checkpoint, args.device)
    train, classes = list_image_folder(args.data_root, 'train')
    val, _ = list_image_folder(args.data_root, 'val', classes)
    train_feats = embed(model, train, args.feature, 'train')
    val_feats = embed(model, val, args.feature, 'val')
    scores = knn_classify(train_feats, torch.tensor([y for _, y in train]), val_feats,
                          len(classes), args.k, args.temperature)
    topk = (1, 5) if len(classes) > 5 else (1, )
    acc = topk_accuracy(scores, torch.tensor([y for _, y in val]), topk)
    name = args.checkpoint or f'random init (seed {args.seed})'
    print(f'k-NN (k={args.k}, T={args.temperature}, {args.feature} feature) of {name}: '
          f'{len(train)} train / {len(val)} val images, {len(classes)} classes: '
          + '  '.join(f'{k}: {v:.2f}' for k, v in acc.items()))


if __name__ == '__main__':
    main()
