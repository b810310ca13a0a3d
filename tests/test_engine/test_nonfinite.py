"""Non-finite steps: skipped, counted apart from the loss scale's, fatal or reloaded after K."""
import pytest
import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.optim.optimizer import amp_optimizer_wrapper
from mmengine.runner import Runner
from torch import nn

from mmmim.engine import NonFiniteSkipAmpOptimWrapper, NonFiniteSkipOptimWrapper

NAN = float('nan')


def linear():
    torch.manual_seed(0)
    return nn.Linear(2, 1)


def weights(module):
    return [p.detach().clone() for p in module.parameters()]


def same(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def test_nonfinite_loss_or_gradient_skips_the_step():
    net = linear()
    wrapper = NonFiniteSkipOptimWrapper(optimizer=torch.optim.SGD(net.parameters(), lr=0.1))
    x = torch.ones(4, 2)
    before = weights(net)
    wrapper.update_params(net(x).sum() * NAN)  # injected non-finite loss
    assert same(weights(net), before) and wrapper.step_result == 'skipped'
    assert all(p.grad is None or not p.grad.any() for p in net.parameters())  # cleared
    # a finite loss with non-finite gradients: d sqrt(u) / du at u = 0
    wrapper.update_params(net(x).sub(net(x).detach()).abs().sqrt().sum())
    assert same(weights(net), before)
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (2, 2)
    wrapper.update_params(net(x).sum())
    assert not same(weights(net), before) and wrapper.step_result == 'applied'
    assert (wrapper.skipped_steps, wrapper.consecutive_skips) == (2, 0)


def test_a_nonfinite_loss_anywhere_in_the_accumulation_window_skips_the_update():
    net = linear()
    wrapper = NonFiniteSkipOptimWrapper(optimizer=torch.optim.SGD(net.parameters(), lr=0.1),
                                        accumulative_counts=2)
    before = weights(net)
    wrapper.update_params(net(torch.ones(4, 2)).sum() * float('inf'))
    assert wrapper.step_result is None  # accumulating, no step yet
    wrapper.update_params(net(torch.zeros(4, 2)).sum())
    assert wrapper.step_result == 'skipped' and same(weights(net), before)


@pytest.fixture(params=['cpu', 'cuda'])
def amp_device(request, monkeypatch):
    """The AMP wrappers on CUDA, or on the CPU with a CPU GradScaler in place of the CUDA one."""
    if request.param == 'cuda' and not torch.cuda.is_available():
        pytest.skip('no CUDA device')
    if request.param == 'cpu':
        monkeypatch.setattr(amp_optimizer_wrapper, 'is_cuda_available', lambda: True)
    return request.param


def amp_wrapper(device, dtype):
    net = linear().to(device)
    wrapper = NonFiniteSkipAmpOptimWrapper(
        optimizer=torch.optim.SGD(net.parameters(), lr=0.1), dtype=dtype)
    wrapper.loss_scaler = torch.amp.GradScaler(device, init_scale=2.0**16)
    return net, wrapper


def test_fp16_overflow_is_the_loss_scales_skip_and_counted_apart(amp_device):
    net, wrapper = amp_wrapper(amp_device, 'float16')
    x = torch.ones(4, 2, device=amp_device)
    before = weights(net)
    # a finite loss whose scaled gradients overflow (fp16 overflow, emulated in fp32)
    wrapper.update_params(net(x).sum() * 1e35)
    assert wrapper.step_result == 'amp_skipped' and same(weights(net), before)
    assert wrapper.loss_scaler.get_scale() == 2.0**15  # lowered by the GradScaler
    assert (wrapper.skipped_steps, wrapper.amp_skipped_steps) == (0, 1)
    # a non-finite loss is the guard's skip; the scale stays
    wrapper.update_params(net(x).sum() * NAN)
    assert wrapper.step_result == 'skipped' and same(weights(net), before)
    assert wrapper.loss_scaler.get_scale() == 2.0**15
    assert (wrapper.skipped_steps, wrapper.amp_skipped_steps) == (1, 1)
    wrapper.update_params(net(x).sum())
    assert wrapper.step_result == 'applied' and not same(weights(net), before)
    assert (wrapper.consecutive_skips, wrapper.consecutive_amp_skips) == (0, 0)


def test_bf16_nonfinite_gradients_are_the_guards_skip(amp_device):
    net, wrapper = amp_wrapper(amp_device, 'bfloat16')
    x = torch.ones(4, 2, device=amp_device)
    before = weights(net)
    wrapper.update_params(net(x).sum() * 1e35)  # no fp16 overflow in bf16: a real inf
    assert wrapper.step_result == 'skipped' and same(weights(net), before)
    assert wrapper.loss_scaler.get_scale() == 2.0**16 and wrapper.amp_skipped_steps == 0
    wrapper.update_params(net(x).sum())
    assert wrapper.step_result == 'applied'


class Toy(BaseModel):
    """A linear regressor whose loss is NaN at the given (0-based) iterations."""

    def __init__(self, nan_iters=()):
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(2, 1)
        self.nan_iters = set(nan_iters)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        loss = self.linear(torch.stack(inputs)).pow(2).mean()
        if MessageHub.get_current_instance().get_info('iter') in self.nan_iters:
            loss = loss * NAN
        return dict(loss_mse=loss, acc=torch.tensor(1.0))


def runner(tmp_path, nan_iters, hook=None, wrapper='NonFiniteSkipOptimWrapper', max_iters=8):
    data = [dict(inputs=torch.randn(2, generator=torch.Generator().manual_seed(i)))
            for i in range(16)]
    return Runner(
        model=Toy(nan_iters),
        work_dir=str(tmp_path),
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        optim_wrapper=dict(type=wrapper, optimizer=dict(type='SGD', lr=0.1)),
        custom_hooks=[dict(type='NonFiniteGuardHook', **(hook or {}))],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
                           logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(window_size=1, by_epoch=False),
        default_scope='mmmim',
        experiment_name=f'nonfinite_{tmp_path.name}')


def test_k_consecutive_skips_stop_naming_iteration_terms_and_checkpoint(tmp_path):
    run = runner(tmp_path, nan_iters={4, 5, 6}, hook=dict(max_consecutive=3))
    with pytest.raises(RuntimeError) as err:
        run.train()
    msg = str(err.value)
    assert '3 non-finite steps in a row at iteration 7' in msg
    assert 'loss_mse: nan' in msg and 'acc: 1' in msg
    good = str(tmp_path / 'iter_4.pth')  # saved before the run of skips began (iter_6 during it)
    assert f'the last good checkpoint is {good}' in msg
    saved = torch.load(good, map_location='cpu', weights_only=False)['state_dict']
    assert all(torch.equal(v, saved[k]) for k, v in run.model.state_dict().items())
    assert run.optim_wrapper.skipped_steps == 3


def test_reload_goes_on_from_the_good_checkpoint_with_a_lower_lr(tmp_path):
    run = runner(tmp_path, nan_iters={4, 5}, hook=dict(max_consecutive=2, reload=True,
                                                        lr_factor=0.5), max_iters=8)
    run.train()  # finishes
    assert run.optim_wrapper.get_lr()['lr'] == [pytest.approx(0.05)]
    log = ''.join(open(p).read() for p in tmp_path.glob('*/*.log'))
    assert 'skipped a non-finite step' in log and 'reloaded the weights and optimizer state' in log
    assert 'iter_4.pth' in log and 'nonfinite_skips: 2' in log


def test_the_hook_needs_a_guarding_optim_wrapper(tmp_path):
    run = runner(tmp_path, nan_iters=(), wrapper='OptimWrapper')
    with pytest.raises(TypeError, match='NonFiniteSkipOptimWrapper'):
        run.train()
