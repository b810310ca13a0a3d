"""Every demo config under configs/ trains in two processes through tools/dist_train.sh.

torchrun + DDP on gloo (CPU), two iterations each (then a validation where
the config has one) on the shared demo data sets. Fine-tuning,
linear-probing, UperNet and Mask R-CNN demos start from the initial weights
of the pretraining demo whose work dir their config names
(``work_dirs/<name>_demo/...``). The pretraining demos keep their own data
loaders (two persistent workers). A demo config that this test cannot run
fails here, unless another test file runs it through dist_train.sh.
"""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from ..conftest import REPO, dist_env, run_tool
from .test_train_tools import losses

DEMOS = sorted(
    osp.relpath(p, REPO)
    for p in glob.glob(osp.join(REPO, 'configs', '**', '*_demo*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep))
METRIC = {'mmpretrain': 'accuracy/top1: ', 'mmseg': 'mIoU: ', 'mmdet': 'coco/segm_mAP: '}


def work_dir_name(config):
    """``work_dirs/<name>`` of a demo as the docs train it: mae_vit-demo-... -> mae_demo."""
    m = re.match(r'(.+?)(?:_vit)?-demo', osp.basename(config))
    return m and m.group(1).replace('-', '_') + '_demo'


def pretraining_demo(checkpoint):
    """The demo config that trains ``checkpoint`` (e.g. work_dirs/mae_demo/epoch_80.pth)."""
    found = [c for c in DEMOS if checkpoint.startswith(f'work_dirs/{work_dir_name(c)}/')]
    assert len(found) == 1, f'no single demo config trains {checkpoint!r}: {found}'
    return osp.join(REPO, found[0])


def dist_tested_elsewhere(config):
    """Other test files that run ``config`` through tools/dist_train.sh."""
    files = glob.glob(osp.join(REPO, 'tests', '**', 'test_*.py'), recursive=True)
    return [osp.relpath(p, REPO) for p in files if osp.abspath(p) != osp.abspath(__file__)
            and config in open(p).read() and 'dist_train.sh' in open(p).read()]


# Demos whose own test file already trains them through tools/dist_train.sh run there.
RUN_HERE = [c for c in DEMOS if not dist_tested_elsewhere(c)]


def schedule_options(cfg):
    """Two iterations (or one epoch of two), then validation (if any) and a checkpoint."""
    n, unit = (2, 'iters') if 'max_iters' in cfg.train_cfg else (1, 'epochs')
    opts = [f'train_cfg.max_{unit}={n}', f'default_hooks.checkpoint.interval={n}']
    return opts + ([f'train_cfg.val_interval={n}'] if cfg.get('val_cfg') is not None else [])


def data_options(cfg, demo_root, demo_ade20k, demo_coco, demo_checkpoint, fixture=None):
    """Data roots (and the starting checkpoint) of ``cfg`` on the test's demo data."""
    scope = cfg.get('default_scope', 'mmmim')
    if cfg.model.get('type') == 'Transfusion':  # 2 x 8 captioned images, then 64 val images
        root = fixture('demo_captions')
        tokenizer = fixture('demo_bpe_tokenizer')
        return [f'model.tokenizer={tokenizer}', 'train_dataloader.batch_size=8'] + [
            f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val')]
    if cfg.model.get('type') == 'BLIP':  # 64 captions / (2 x 16), from scratch; 64 val images
        root = fixture('demo_captions')
        return [f'model.tokenizer={fixture("demo_wordpiece_vocab")}', 'model.init_cfg=None',
                'train_dataloader.batch_size=16', 'train_dataloader.dataset.indices=64'] + [
            f'{split}_dataloader.dataset.data_root={root}' for split in ('train', 'val')]
    if scope == 'mmmim':  # pretraining: 64 images / (2 processes x 16)
        return [f'train_dataloader.dataset.data_root={demo_root}', 'train_dataloader.batch_size=16']
    ckpt = demo_checkpoint(pretraining_demo(cfg.model.backbone.init_cfg.checkpoint))
    opts = [f'model.backbone.init_cfg.checkpoint={ckpt}']
    if scope == 'mmpretrain':  # 64 images / (2 x 16), then 16 validation images
        return opts + ['train_dataloader.batch_size=16'] + [
            f'{split}_dataloader.dataset.data_root={demo_root}' for split in ('train', 'val')]
    if scope == 'mmseg':  # 2 processes x 4 of 8 images, then 4 validation images
        return opts + [f'{split}_dataloader.dataset.data_root={demo_ade20k}'
                       for split in ('train', 'val', 'test')]
    if scope == 'mmdet':  # 2 processes x 2 of 8 images, then 4 validation images
        ann = osp.join(demo_coco, 'annotations', 'instances_val2017.json')
        return opts + ['train_dataloader.batch_size=2', f'val_evaluator.ann_file={ann}',
                       f'test_evaluator.ann_file={ann}'] + [
            f'{split}_dataloader.dataset.data_root={demo_coco}/'
            for split in ('train', 'val', 'test')]
    raise AssertionError(f'no rule to run a demo of default_scope {scope!r}')


def test_demo_configs_are_found():
    assert len(DEMOS) >= 10 and not any('_base_' in p for p in DEMOS), DEMOS


@pytest.mark.parametrize('config', RUN_HERE)
def test_demo_trains_in_two_processes(config, demo_root, demo_ade20k, demo_coco, demo_checkpoint,
                                      tmp_path, request):
    cfg = Config.fromfile(osp.join(REPO, config))
    opts = data_options(cfg, demo_root, demo_ade20k, demo_coco, demo_checkpoint,
                        request.getfixturevalue)
    proc = run_tool(['bash', 'tools/dist_train.sh', config, '2', '--work-dir', str(tmp_path),
                     '--cfg-options', *opts, *schedule_options(cfg),
                     'default_hooks.logger.interval=1', 'log_processor.window_size=1'],
                    env=dist_env())
    log = proc.stdout + proc.stderr
    assert 'Distributed training: True' in log and 'terminate called' not in log
    assert losses(str(tmp_path)).keys() == {1, 2}
    assert osp.isfile(open(tmp_path / 'last_checkpoint').read().strip())
    scope = cfg.get('default_scope', 'mmmim')
    if scope in METRIC:
        assert METRIC[scope] in log, log[-3000:]
