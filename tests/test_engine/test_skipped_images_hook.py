"""SkippedImagesHook: the run's skipped images, over data loader workers and ranks, in the log."""
import json
import os.path as osp
import re

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmmim.datasets import make_demo_images

from ..conftest import DEMO_CONFIG, dist_env, run_tool
from ..test_datasets.test_demo_and_transforms import add_bad_jpegs

EPOCH_LINE = re.compile(r'LoadImageOrSkip skipped (\d+) images so far')


class MeanModel(BaseModel):
    """One number fitted to the mean pixel: the smallest model a runner trains."""

    def __init__(self):
        super().__init__()
        self.mean = torch.nn.Parameter(torch.zeros(()))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=(torch.stack(inputs).float().mean() - self.mean)**2)


def train(root, work_dir, num_workers=2):
    """Two epochs; the text log and the scalars of every logged iteration."""
    runner = Runner(
        model=MeanModel(), work_dir=str(work_dir), experiment_name=osp.basename(work_dir),
        default_scope='mmmim',
        train_dataloader=dict(
            batch_size=4, num_workers=num_workers, collate_fn=dict(type='pseudo_collate'),
            sampler=dict(type='DefaultSampler', shuffle=False),
            dataset=dict(type='CustomDataset', data_root=str(root), data_prefix='train',
                         with_label=False,
                         pipeline=[dict(type='LoadImageOrSkip'), dict(type='PackInputs')])),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-4)),
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1), checkpoint=None),
        custom_hooks=[dict(type='SkippedImagesHook')])
    runner.train()
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        scalars = [json.loads(line) for line in f]
    return log, scalars


def test_skips_in_workers_are_logged_per_epoch_and_interval(tmp_path):
    root = tmp_path / 'demo'
    make_demo_images(str(root), 3, 1, size=32)  # 12 images, 3 iterations per epoch
    add_bad_jpegs(root)
    log, scalars = train(root, tmp_path / 'bad')
    per_epoch = [int(n) for n in EPOCH_LINE.findall(log)]
    warnings = log.count('skipped image')  # the workers' warnings, one per skip
    assert len(per_epoch) == 2 and 2 <= per_epoch[0] and per_epoch[0] + 2 <= per_epoch[1]
    assert per_epoch[1] == warnings
    assert [s['skipped_images'] for s in scalars if 'loss' in s][-1] == warnings
    assert 'skipped_images: ' in log  # in the iteration lines too


def test_nothing_skipped_is_logged_as_zero(tmp_path):
    root = tmp_path / 'demo'
    make_demo_images(str(root), 2, 1, size=32)
    log, scalars = train(root, tmp_path / 'clean', num_workers=0)
    assert [int(n) for n in EPOCH_LINE.findall(log)] == [0, 0]
    assert {s['skipped_images'] for s in scalars if 'loss' in s} == {0}


def test_two_ranks_log_their_sum(tmp_path):
    root = tmp_path / 'demo'
    make_demo_images(str(root), 2, 1, size=32)
    add_bad_jpegs(root, indices=(1, 3))  # unshuffled, odd indices are rank 1's
    config = tmp_path / 'mae_demo_skips.py'  # the demo config with only this hook
    config.write_text(f'_base_ = [{DEMO_CONFIG!r}]\n'
                      "custom_hooks = [dict(type='SkippedImagesHook')]\n")
    proc = run_tool([
        'bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(tmp_path / 'work'),
        '--cfg-options', f'train_dataloader.dataset.data_root={root}',
        'train_dataloader.num_workers=2', 'train_dataloader.persistent_workers=False',
        'train_dataloader.batch_size=2', 'train_dataloader.sampler.shuffle=False',
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'], env=dist_env())
    # rank 0, the one that logs, skipped nothing itself
    assert int(EPOCH_LINE.findall(proc.stdout + proc.stderr)[-1]) >= 2
