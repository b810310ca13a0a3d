"""Hooks of mmmim."""
import random

import numpy as np
import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook, LoggerHook

from mmmim.datasets import LoadImageOrSkip
from mmmim.registry import HOOKS


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Save the random generators in checkpoints and restore them on resume.

    MMEngine re-seeds, but does not restore, the generators on ``--resume``,
    so random masks and augmentations after a resume differ from those of an
    uninterrupted run. This hook stores the states of Python's ``random``,
    numpy's global generator and torch's CPU and CUDA generators, so a
    resumed run draws the same numbers (augmentations in data loader workers
    follow MMEngine's per-worker seeding and are not covered).
    """

    priority = 'VERY_LOW'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint['random_state'] = dict(
            python=random.getstate(),
            numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)), pos=int(pos),
                       has_gauss=int(has_gauss), gauss=float(gauss)),
            torch=torch.get_rng_state(),
            cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        )

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('random_state')
        if state is None or not runner._resume:
            return  # loading weights (load_from) keeps the fresh generators
        random.setstate(state['python'])
        np_state = state['numpy']
        np.random.set_state((np_state['kind'], np_state['keys'].numpy().astype(np.uint32),
                             np_state['pos'], np_state['has_gauss'], np_state['gauss']))
        torch.set_rng_state(state['torch'])
        if state['cuda'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state['cuda'])
        runner.logger.info('restored the random generators from the checkpoint')


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """Log how many images ``LoadImageOrSkip`` skipped in this run, over all workers and ranks.

    Each rank's count (its process and data loader workers) is summed over
    the ranks at every logging interval, where it joins the log line and
    the scalars as ``skipped_images``, and at the end of each epoch, where it
    gets a line of its own. It is 0 when nothing was skipped.
    """

    priority = 'NORMAL'  # before LoggerHook (BELOW_NORMAL) writes the iteration's line

    def before_train(self, runner) -> None:
        self._start = LoadImageOrSkip.num_skipped()
        intervals = [hook.interval for hook in runner.hooks if isinstance(hook, LoggerHook)]
        self._interval = intervals[0] if intervals else None

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._interval and (self.every_n_inner_iters(batch_idx, self._interval)
                               or self.end_of_epoch(runner.train_dataloader, batch_idx)):
            runner.message_hub.update_scalar('train/skipped_images', self._total())

    def after_train_epoch(self, runner) -> None:
        runner.logger.info(f'LoadImageOrSkip skipped {self._total()} images so far (all data '
                           'loader workers and ranks)')

    def _total(self) -> int:
        count = torch.tensor(LoadImageOrSkip.num_skipped() - self._start)
        all_reduce(count)  # sum over ranks; unchanged when not distributed
        return int(count)
