"""Config loading and runner building shared by tools/train.py and tools/test.py.

The config's ``default_scope`` picks the framework (mmmim, mmpretrain, mmseg,
mmdet); mmmim is always imported so its modules resolve everywhere.
"""
import importlib
import logging
import os
import os.path as osp
import sys

import torch
from mmengine.config import Config
from mmengine.registry import RUNNERS
from mmengine.runner import Runner

SCOPES = ('mmmim', 'mmpretrain', 'mmseg', 'mmdet')


def load_config(path, cfg_options, launcher, work_dir=None):
    """Read ``path``, apply ``--cfg-options`` (a dict) and fill in the work dir and launcher."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    cfg = Config.fromfile(path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    scope = cfg.get('default_scope', 'mmmim')
    if scope not in SCOPES:
        raise ValueError(f'{path}: default_scope {scope!r} is not one of {SCOPES}')
    import mmmim  # noqa: F401  (registers mmmim and mmpretrain modules)
    if scope != 'mmmim':
        importlib.import_module(f'{scope}.utils').register_all_modules(init_default_scope=False)
    cfg.launcher = launcher
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('work_dirs', osp.splitext(osp.basename(path))[0])
    return cfg


def build_runner(cfg):
    """A runner of the config's ``runner_type`` or MMEngine's default.

    On a machine without GPUs, torchrun-launched processes join a gloo group
    here and DDP gets no device ids, since MMEngine's defaults select a CUDA
    device per process; a ``FlexibleRunner`` gets its ``DDPStrategy`` so (FSDP
    and DeepSpeed strategies need GPUs and are refused with a clear error).
    """
    if cfg.launcher == 'pytorch' and not torch.cuda.is_available():
        import torch.distributed as dist
        if not dist.is_initialized():
            dist.init_process_group(backend='gloo')
        cpu_ddp = dict(type='MMDistributedDataParallel', device_ids=None, broadcast_buffers=False)
        if cfg.get('runner_type') == 'FlexibleRunner':  # its strategy wraps the model
            strategy = cfg.setdefault('strategy', dict(type='DDPStrategy'))
            if strategy.get('type') != 'DDPStrategy':
                raise RuntimeError(f"strategy {strategy.get('type')!r} needs GPUs (torch FSDP "
                                   'and DeepSpeed refuse CPU devices); on the CPU use '
                                   "strategy=dict(type='DDPStrategy')")
            strategy.setdefault('model_wrapper', cpu_ddp)
        cfg.setdefault('model_wrapper_cfg', cpu_ddp)
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def leave_process_group() -> None:
    """End a distributed run: wait for every rank, destroy the group, exit without finalizing.

    A gloo worker thread can still be releasing the last collective's tensors
    (e.g. the metrics broadcast that ends a validation) when the interpreter
    finalizes; it then needs the GIL, is made to exit, and the process aborts
    with 'terminate called without an active exception' (pytorch#190489).
    torch keeps a gloo group that DDP used alive after
    ``destroy_process_group``, so its threads cannot be joined. A gloo run
    therefore flushes its logs and leaves with ``os._exit(0)`` once every
    rank is done, skipping the finalization in which the race happens.
    """
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    gloo = dist.get_backend() == 'gloo'
    dist.barrier()
    dist.destroy_process_group()
    if gloo:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def check_checkpoint_fits(model, checkpoint: str) -> None:
    """Raise, naming the keys, when ``checkpoint``'s tensors do not fit ``model``'s shapes.

    MMEngine's loader skips such tensors with a warning; for testing that
    means wrong numbers (e.g. a head trained for other ``num_classes``).
    """
    from mmengine.model import is_model_wrapper
    model = model.module if is_model_wrapper(model) else model
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt)
    own = model.state_dict()
    bad = [f'{k}: checkpoint {tuple(v.shape)}, model {tuple(own[k].shape)}'
           for k, v in state.items() if k in own and own[k].shape != v.shape]
    if bad:
        raise ValueError(f'{checkpoint} does not fit the model of the config (num_classes or '
                         'architecture differ):\n  ' + '\n  '.join(bad))
