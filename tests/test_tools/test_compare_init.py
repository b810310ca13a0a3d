"""tools/analysis_tools/compare_init.py: two seeds x two initialisations of the fine-tuning
demo at one epoch of 64 images, and its argument errors."""
import glob
import importlib.util
import json
import os.path as osp
import re
import sys

import numpy as np
import pytest
from mmengine.config import Config

from ..conftest import DEMO_CONFIG, REPO, run_tool

TOOL = osp.join(REPO, 'tools', 'analysis_tools', 'compare_init.py')
FINETUNE = osp.join(REPO, 'configs', 'benchmarks', 'classification',
                    'vit-demo-p8_mae-pre_1xb32-coslr-10e_demo-ft.py')


def load_tool():
    spec = importlib.util.spec_from_file_location('mmmim_compare_init_tool', TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def options(demo_root, checkpoint):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={demo_root}',
            f'val_dataloader.dataset.data_root={demo_root}',
            f'model.backbone.init_cfg.checkpoint={checkpoint}', 'train_cfg.max_epochs=1',
            'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1']


@pytest.fixture(scope='module')
def compared(demo_root, demo_checkpoint, tmp_path_factory):
    ckpt = demo_checkpoint(DEMO_CONFIG)
    work_dir = str(tmp_path_factory.mktemp('compare') / 'ft')
    proc = run_tool([sys.executable, TOOL, FINETUNE, '--seeds', '2', '--work-dir', work_dir,
                     *options(demo_root, ckpt)])
    return dict(work_dir=work_dir, ckpt=ckpt, out=proc.stdout,
                result=json.load(open(osp.join(work_dir, 'compare_init.json'))))


def last_top1(run_dir):
    """accuracy/top1 of the last line of the run's scalars.json that has one."""
    path, = glob.glob(osp.join(run_dir, '*', 'vis_data', 'scalars.json'))
    return [json.loads(line) for line in open(path) if 'accuracy/top1' in line][-1]['accuracy/top1']


def test_runs_record_the_logged_metric_and_the_summary_is_its_mean_and_std(compared):
    runs = compared['result']['runs']
    assert sorted((r['init'], r['seed']) for r in runs) == [
        ('pretrained', 0), ('pretrained', 1), ('random', 0), ('random', 1)]
    for r in runs:
        assert r['metrics']['accuracy/top1'] == last_top1(r['work_dir'])
        assert r['step'] == 1  # the validation after the one epoch
    for init in ('pretrained', 'random'):
        values = [r['metrics']['accuracy/top1'] for r in runs if r['init'] == init]
        summary = compared['result']['summary'][init]['accuracy/top1']
        assert summary['mean'] == pytest.approx(np.mean(values), abs=1e-12)
        assert summary['std'] == pytest.approx(np.std(values, ddof=1), abs=1e-12)
    line, = [s for s in compared['out'].splitlines() if s.startswith('accuracy/top1 ')]
    s = compared['result']['summary']
    assert line.split() == ['accuracy/top1'] + [
        f"{s[init]['accuracy/top1'][k]:.3f}" if k else '±'
        for init in ('pretrained', 'random') for k in ('mean', None, 'std')]


def test_runs_differ_by_seed_and_only_random_runs_skip_the_checkpoint(compared):
    for r in compared['result']['runs']:
        cfg = Config.fromfile(osp.join(r['work_dir'], osp.basename(FINETUNE)))
        assert cfg.randomness.seed == r['seed']
        log = open(osp.join(r['work_dir'], 'console.log')).read()
        if r['init'] == 'pretrained':
            assert cfg.model.backbone.init_cfg.checkpoint == compared['ckpt']
            assert re.search(r'mmmim layout', log) and compared['ckpt'] in log
        else:
            assert cfg.model.backbone.init_cfg is None and compared['ckpt'] not in log


def test_argument_errors_name_the_fault(compared, demo_root, tmp_path, capsys):
    tool = load_tool()
    with pytest.raises(SystemExit):
        tool.main([FINETUNE, '--seeds', '0'])
    assert '--seeds must be at least 1' in capsys.readouterr().err
    with pytest.raises(FileExistsError, match='pretrained_seed0'):  # no overwrite without --force
        tool.main([FINETUNE, '--seeds', '2', '--work-dir', compared['work_dir'],
                   *options(demo_root, compared['ckpt'])])
    missing = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match=re.escape(missing)):
        tool.main([FINETUNE, '--work-dir', str(tmp_path / 'w'), *options(demo_root, missing)])
    with pytest.raises(ValueError, match='no model.backbone.init_cfg.checkpoint'):
        tool.main([DEMO_CONFIG, '--work-dir', str(tmp_path / 'w')])
    with pytest.raises(ValueError, match='change nothing'):
        tool.main([FINETUNE, '--work-dir', str(tmp_path / 'w'),
                   *options(demo_root, compared['ckpt']),
                   '--random-init-cfg-options', 'model.backbone.patch_size=8'])
    assert not osp.exists(tmp_path / 'w')  # nothing written by a refused call
    run_dir = compared['result']['runs'][0]['work_dir']
    with pytest.raises(KeyError, match='accuracy/top1'):  # an absent metric lists the logged ones
        tool.read_metrics(run_dir, ['mIoU'])
