"""Gradient clipping of a model sharded over ranks: the norm of the whole gradient."""
import os

import torch

from ..conftest import free_port

GRAD = [3.0, -4.0, 12.0, 1.0, 2.0, -2.0]  # norm 13.6


def _clip_worker(rank, port, results):
    import torch.distributed as dist
    from mmengine.logging import MessageHub

    from mmmim.engine.fsdp import ShardedGradClipOptimWrapper
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=2)
    # rank 0 holds elements 0-3 (two parameters), rank 1 elements 4-5: disjoint shards
    shards = [[GRAD[0:1], GRAD[1:4]], [GRAD[4:6]]][rank]
    params = [torch.nn.Parameter(torch.zeros(len(g))) for g in shards]
    for p, g in zip(params, shards):
        p.grad = torch.tensor(g)
    wrapper = ShardedGradClipOptimWrapper(torch.optim.SGD(params, lr=1.0),
                                          clip_grad=dict(max_norm=1.0))
    wrapper._clip_grad()
    norm = MessageHub.get_current_instance().get_scalar('train/grad_norm').current()
    results[rank] = ([v for p in params for v in p.grad.tolist()], norm)
    dist.destroy_process_group()


def test_clips_by_the_norm_of_the_whole_gradient():
    import torch.multiprocessing as mp
    full = torch.nn.Parameter(torch.zeros(6))
    full.grad = torch.tensor(GRAD)
    ref_norm = torch.nn.utils.clip_grad_norm_([full], max_norm=1.0)
    results = mp.Manager().dict()
    mp.start_processes(_clip_worker, args=(free_port(), results), nprocs=2, start_method='fork')
    clipped = results[0][0] + results[1][0]
    torch.testing.assert_close(torch.tensor(clipped), full.grad, atol=1e-6, rtol=1e-6)
    assert abs(results[0][1] - float(ref_norm)) < 1e-4 and results[0][1] == results[1][1]
    # each shard clipped by its own norm (what clip_grad_norm_ does on a rank) is not that
    alone = torch.nn.Parameter(torch.zeros(2))
    alone.grad = torch.tensor(GRAD[4:6])
    torch.nn.utils.clip_grad_norm_([alone], max_norm=1.0)
    assert not torch.allclose(alone.grad, full.grad[4:])


def test_refuses_clip_options_it_cannot_honour_when_built():
    import pytest

    from mmmim.engine.fsdp import ShardedGradClipOptimWrapper
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=1.0)
    with pytest.raises(ValueError, match='norm_type'):
        ShardedGradClipOptimWrapper(opt, clip_grad=dict(max_norm=1.0, norm_type=1))
