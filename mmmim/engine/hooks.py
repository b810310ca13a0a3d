"""Hooks of mmmim."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

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
