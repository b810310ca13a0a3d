"""Weighted k-NN accuracy of the backbone during pretraining."""
import os
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np
import torch
from mmengine.dist import broadcast_object_list, collect_results, get_dist_info
from mmengine.hooks import Hook, LoggerHook
from mmengine.model import is_model_wrapper

from mmmim.apis import knn_classify, read_image, topk_accuracy
from mmmim.registry import HOOKS

IMAGE_EXTS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def list_image_folder(root: str, split: str, classes: Optional[List[str]] = None):
    """``(path, label)`` of ``root/split/<class>/*`` images and the sorted class names."""
    folder = osp.join(root, split)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{folder} not found: the k-NN data root needs train/ and val/ '
                                'class folders')
    classes = classes or sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
    items = [(osp.join(folder, c, f), label) for label, c in enumerate(classes)
             if osp.isdir(osp.join(folder, c))
             for f in sorted(os.listdir(osp.join(folder, c))) if f.lower().endswith(IMAGE_EXTS)]
    if not items:
        raise FileNotFoundError(f'no images under {folder}/<class>/')
    return items, classes


@HOOKS.register_module()
class KNNEvalHook(Hook):
    """Weighted k-NN top-1 / top-5 of the backbone's features every ``interval`` epochs.

    The evaluation of ``tools/analysis_tools/knn_eval.py`` (and the same
    number for the same weights): centre crops at the backbone's input size,
    normalised by the model's data preprocessor, the class token (``cls``)
    or the mean patch token (``avg``) of the last output, L2-normalised;
    each ``val/`` image takes the vote of its ``k`` nearest ``train/`` images
    weighted by ``exp(similarity / temperature)``. Each rank embeds a shard
    of the images, rank 0 gathers them and scores. The result is logged as
    a line and as the scalars ``knn/top1`` / ``knn/top5`` (JSON log,
    TensorBoard and other visualizer backends), at the epoch as step.

    Args:
        data_root: Folder with ``train/<class>/*`` and ``val/<class>/*``
            images; default: ``train_dataloader.dataset.data_root``.
        interval: Epochs between evaluations; the last epoch is always scored.
        k: Neighbours.
        temperature: Temperature of the vote weights.
        feature: ``'cls'`` or ``'avg'``.
        batch_size: Images per forward pass.
        collect_device: ``'cpu'`` or ``'gpu'``, as for MMEngine's evaluators.
    """

    priority = 'NORMAL'  # before the CheckpointHook (VERY_LOW) saves the epoch

    def __init__(self,
                 data_root: Optional[str] = None,
                 interval: int = 1,
                 k: int = 20,
                 temperature: float = 0.07,
                 feature: str = 'cls',
                 batch_size: int = 64,
                 collect_device: str = 'cpu'):
        if feature not in ('cls', 'avg'):
            raise ValueError(f"KNNEvalHook feature must be 'cls' or 'avg', got {feature!r}")
        if interval < 1:
            raise ValueError(f'KNNEvalHook interval must be >= 1 epoch, got {interval}')
        self.data_root = data_root
        self.interval = interval
        self.k = k
        self.temperature = temperature
        self.feature = feature
        self.batch_size = batch_size
        self.collect_device = collect_device

    def before_train(self, runner) -> None:
        if self.data_root is None:
            try:
                self.data_root = runner.cfg.train_dataloader.dataset.data_root
            except AttributeError:
                raise KeyError('KNNEvalHook has no data_root and the config has no '
                               'train_dataloader.dataset.data_root to take') from None
        self.train_items, classes = list_image_folder(self.data_root, 'train')
        self.val_items, _ = list_image_folder(self.data_root, 'val', classes)
        self.num_classes = len(classes)
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'backbone'):
            raise AttributeError(f'KNNEvalHook scores model.backbone; {type(model).__name__} '
                                 'has none')
        loggers = [h for h in runner.hooks if isinstance(h, LoggerHook)]
        self._json_log = loggers[0].json_log_path if loggers else None

    def after_train_epoch(self, runner) -> None:
        if not (self.every_n_epochs(runner, self.interval) or self.is_last_train_epoch(runner)):
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        acc = self.evaluate(model)
        epoch = runner.epoch + 1
        runner.logger.info(
            f'Epoch(knn) [{epoch}]  k-NN (k={self.k}, T={self.temperature}, {self.feature} '
            f'feature, {len(self.train_items)} train / {len(self.val_items)} val images): '
            + '  '.join(f'{name}: {value:.2f}' for name, value in acc.items()))
        scalars = {f'knn/{name}': value for name, value in acc.items()}
        runner.visualizer.add_scalars(scalars, step=epoch, file_path=self._json_log)

    @torch.no_grad()
    def evaluate(self, model) -> dict:
        """``{'top1': ..., 'top5': ...}`` (percent) of ``model.backbone``; the same on all ranks."""
        was_training = model.training
        model.eval()
        try:
            train, train_labels = self._embed(model, self.train_items)
            val, val_labels = self._embed(model, self.val_items)
        finally:
            model.train(was_training)
        acc = [None]
        if get_dist_info()[0] == 0:
            scores = knn_classify(train, train_labels, val, self.num_classes, self.k,
                                  self.temperature)
            acc[0] = topk_accuracy(scores, val_labels, (1, 5) if self.num_classes > 5 else (1, ))
        broadcast_object_list(acc)
        return acc[0]

    def _embed(self, model, items) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Features ``[N, C]`` and labels ``[N]`` of ``items`` on rank 0 (None elsewhere)."""
        rank, world = get_dist_info()
        # DefaultSampler's sharding: pad to a multiple of the ranks, take every world-th
        order = list(range(len(items)))
        order += order[:(-len(order)) % world]
        pre = model.data_preprocessor
        size = model.backbone.img_size[0]
        rows = []
        shard = order[rank::world]
        for start in range(0, len(shard), self.batch_size):
            batch = [items[i] for i in shard[start:start + self.batch_size]]
            imgs = np.stack([read_image(path, size) for path, _ in batch])  # [B, H, W, 3] RGB
            x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float().to(pre.mean.device)
            out = model.backbone((x - pre.mean) / pre.std)[-1]
            if out.ndim == 3:  # tokens [B, 1 + L, C]
                out = out[:, 0] if self.feature == 'cls' else out[:, 1:].mean(dim=1)
            rows += [(f.cpu(), label) for f, (_, label) in zip(out.flatten(1).float(), batch)]
        rows = collect_results(rows, len(items), self.collect_device)
        if rows is None:
            return None, None
        return torch.stack([f for f, _ in rows]), torch.tensor([label for _, label in rows])
