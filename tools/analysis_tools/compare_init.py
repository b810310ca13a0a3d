"""What pretraining buys: train a downstream config over seeds from the pretrained
checkpoint and from random initialisation, and print the metric's mean ± std of each.

    python tools/analysis_tools/compare_init.py CONFIG [--seeds 3] [--work-dir DIR]
        [--metric KEY ...] [--random-init-cfg-options KEY=VALUE ...]
        [--cfg-options KEY=VALUE ...] [--force]

Every run is ``tools/train.py CONFIG --work-dir DIR/{pretrained,random}_seed{S}
--cfg-options randomness.seed=S ...`` in a fresh process (``OMP_NUM_THREADS=1``
unless set), seeds 0 to N-1, the two initialisations alternating. The random
runs add ``--random-init-cfg-options``, by default ``model.backbone.init_cfg=None``:
the backbone keeps its constructor's initialisation, the pretrained file is not
read. ``--cfg-options`` apply to both. The metric is that of the run's last
validation, read from MMEngine's ``vis_data/scalars.json``; by default mIoU and
aAcc (mmseg), ``coco/bbox_mAP`` and ``coco/segm_mAP`` (mmdet), ``accuracy/top1``
(mmpretrain). The std is the sample standard deviation over seeds (ddof=1).
Per-run metrics and the summary go to ``DIR/compare_init.json``; an existing run
directory is an error unless ``--force`` (which deletes it before its run).
"""
import argparse
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import time

import numpy as np
from mmengine.config import Config, DictAction

from mmmim.utils import Progress

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INITS = ('pretrained', 'random')
DEFAULT_METRICS = {
    'mmseg': ['mIoU', 'aAcc'],
    'mmdet': ['coco/bbox_mAP', 'coco/segm_mAP'],
    'mmpretrain': ['accuracy/top1'],
}
RANDOM_INIT = ['model.backbone.init_cfg=None']


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Downstream metric over seeds, pretrained vs random initialisation')
    parser.add_argument('config', help='downstream config (mmseg, mmdet or mmpretrain scope)')
    parser.add_argument('--seeds', type=int, default=3,
                        help='runs per initialisation (seeds 0..N-1)')
    parser.add_argument('--work-dir', help='default: work_dirs/compare_init/<config name>')
    parser.add_argument('--metric', nargs='+',
                        help="validation keys, e.g. 'mIoU'; default per scope")
    parser.add_argument('--random-init-cfg-options', nargs='+', default=RANDOM_INIT,
                        metavar='KEY=VALUE',
                        help=f'what makes a run random-initialised (default: {RANDOM_INIT[0]})')
    parser.add_argument('--cfg-options', nargs='+', default=[], metavar='KEY=VALUE',
                        help='overrides for every run, e.g. train_cfg.max_iters=100')
    parser.add_argument('--force', action='store_true', help='delete existing run directories')
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f'--seeds must be at least 1, got {args.seeds}')
    return args


def options_dict(options):
    """``['a.b=1', ...]`` -> ``{'a.b': 1}`` as ``--cfg-options`` parses them."""
    ns = argparse.Namespace()
    DictAction(option_strings=[], dest='opts')(None, ns, options)
    return ns.opts


def check_config(args):
    """The merged config of each initialisation; raise naming the option or key at fault."""
    if not osp.isfile(args.config):
        raise FileNotFoundError(f'config file not found: {args.config}')
    cfgs = {}
    for init in INITS:
        cfg = Config.fromfile(args.config)
        cfg.merge_from_dict(options_dict(args.cfg_options))
        if init == 'random':
            cfg.merge_from_dict(options_dict(args.random_init_cfg_options))
        cfgs[init] = cfg
    if cfgs['pretrained'].to_dict() == cfgs['random'].to_dict():
        raise ValueError(f'--random-init-cfg-options {" ".join(args.random_init_cfg_options)} '
                         f'change nothing in {args.config}')
    init_cfg = cfgs['pretrained'].get('model', {}).get('backbone', {}).get('init_cfg')
    if args.random_init_cfg_options == RANDOM_INIT:
        if not (isinstance(init_cfg, dict) and init_cfg.get('checkpoint')):
            raise ValueError(f'{args.config} has no model.backbone.init_cfg.checkpoint; name what '
                             'makes a run random-initialised with --random-init-cfg-options')
    if isinstance(init_cfg, dict) and init_cfg.get('checkpoint'):
        ckpt = init_cfg['checkpoint']
        if '://' not in ckpt and not osp.isfile(ckpt):
            raise FileNotFoundError(
                f'pretrained checkpoint not found: {ckpt} (model.backbone.init_cfg.checkpoint of '
                f'{args.config}); make it first or set it with --cfg-options')
    if cfgs['pretrained'].get('val_dataloader') is None:
        raise ValueError(f'{args.config} has no validation (val_dataloader), so no metric')
    return cfgs['pretrained']


def default_metrics(cfg, config):
    scope = cfg.get('default_scope', 'mmmim')
    if scope not in DEFAULT_METRICS:
        raise ValueError(f'{config} (default_scope {scope!r}) has no default metric; name one '
                         'with --metric')
    return DEFAULT_METRICS[scope]


def read_metrics(work_dir, metrics):
    """``(step, {key: value})`` of the last validation in ``work_dir`` holding all ``metrics``."""
    found = glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))
    if len(found) != 1:
        raise FileNotFoundError(f'expected one */vis_data/scalars.json in {work_dir}, found '
                                f'{len(found)}')
    rows = [json.loads(line) for line in open(found[0]) if line.strip()]
    rows = [r for r in rows if 'loss' not in r and 'lr' not in r]  # validation rows
    hits = [r for r in rows if all(k in r for k in metrics)]
    if not hits:
        keys = sorted({k for r in rows for k in r} - {'step', 'data_time', 'time'})
        raise KeyError(f'{found[0]} has no validation with {metrics}; its validation keys: {keys}')
    return hits[-1]['step'], {k: float(hits[-1][k]) for k in metrics}


def mean_std(values):
    """Mean and sample std (ddof=1; None for one value) of ``values``."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()), (float(values.std(ddof=1)) if len(values) > 1 else None)


def train(args, init, seed, run_dir):
    """One tools/train.py run; its console output goes to ``run_dir/console.log``."""
    options = [f'randomness.seed={seed}', *args.cfg_options]
    if init == 'random':
        options += args.random_init_cfg_options
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), args.config, '--work-dir', run_dir,
           '--cfg-options', *options]
    os.makedirs(run_dir)
    log = osp.join(run_dir, 'console.log')
    env = dict(os.environ)
    env.setdefault('OMP_NUM_THREADS', '1')
    with open(log, 'w') as f:
        rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    if rc != 0:
        tail = open(log).read()[-3000:]
        raise RuntimeError(f'{" ".join(cmd)} exited {rc} (log: {log})\n{tail}')


def fmt(mean, std):
    return f'{mean:.3f} ± {"n/a" if std is None else f"{std:.3f}"}'


def main(argv=None):
    args = parse_args(argv)
    cfg = check_config(args)
    metrics = args.metric or default_metrics(cfg, args.config)
    name = osp.splitext(osp.basename(args.config))[0]
    work_dir = args.work_dir or osp.join('work_dirs', 'compare_init', name)
    runs = [(init, seed, osp.join(work_dir, f'{init}_seed{seed}'))
            for seed in range(args.seeds) for init in INITS]
    out = osp.join(work_dir, 'compare_init.json')
    existing = [p for p in [d for _, _, d in runs] + [out] if osp.exists(p)]
    if existing and not args.force:
        raise FileExistsError(f'results exist (use --force to replace them): '
                              f'{", ".join(existing)}')
    results = []
    with Progress(len(runs), f'compare_init {name}', 'runs') as progress:
        for init, seed, run_dir in runs:
            if osp.exists(run_dir):
                shutil.rmtree(run_dir)
            start = time.monotonic()
            train(args, init, seed, run_dir)
            step, values = read_metrics(run_dir, metrics)
            results.append(dict(init=init, seed=seed, work_dir=run_dir, step=step,
                                seconds=round(time.monotonic() - start, 1), metrics=values))
            progress.update()
            print(f'{init} seed {seed}: ' + '  '.join(f'{k}: {v:.3f}' for k, v in values.items())
                  + f'  (step {step}, {results[-1]["seconds"]:.0f} s)', flush=True)
    summary = {init: {k: dict(zip(('mean', 'std'), mean_std(
        [r['metrics'][k] for r in results if r['init'] == init]))) for k in metrics}
        for init in INITS}
    print(f'{args.config}: {args.seeds} seed(s) per initialisation, mean ± sample std')
    width = max(len(k) for k in ['metric', *metrics]) + 2
    print(f'{"metric":<{width}}{"pretrained":<20}random')
    for k in metrics:
        print(f'{k:<{width}}{fmt(**summary["pretrained"][k]):<20}{fmt(**summary["random"][k])}')
    tmp = out + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(dict(config=args.config, seeds=list(range(args.seeds)), metrics=metrics,
                       cfg_options=args.cfg_options,
                       random_init_cfg_options=args.random_init_cfg_options,
                       runs=results, summary=summary), f, indent=2)
    os.replace(tmp, out)
    print(f'per-run metrics: {out}')
    return summary


if __name__ == '__main__':
    main()
