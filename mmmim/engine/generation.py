"""Training helpers of the generators: RAR's randomness annealing, the GAN optimizers of a tokenizer."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from mmmim.registry import HOOKS, OPTIM_WRAPPER_CONSTRUCTORS, OPTIM_WRAPPERS, OPTIMIZERS


def randomness_ratio(step: int, anneal_start: int, anneal_end: int) -> float:
    """RAR's permutation probability r at ``step``: 1 until ``anneal_start``, linear to 0 at
    ``anneal_end``, then 0."""
    if step < anneal_start:
        return 1.0
    if step >= anneal_end:
        return 0.0
    return 1.0 - (step - anneal_start) / (anneal_end - anneal_start)


@HOOKS.register_module()
class RandomnessAnnealingHook(Hook):
    """Set RAR's ``random_ratio`` before every training iteration and log it as ``random_ratio``.

    r is a function of the iteration count alone, so a resumed run continues
    the schedule where it stopped. The official schedule is 125k / 187.5k of
    250k steps.

    Args:
        anneal_start: Iteration at which r starts to fall from 1.
        anneal_end: Iteration at which r reaches 0.
    """

    priority = 'NORMAL'

    def __init__(self, anneal_start: int, anneal_end: int):
        if not 0 <= anneal_start <= anneal_end:
            raise ValueError(f'RandomnessAnnealingHook needs 0 <= anneal_start <= anneal_end, '
                             f'got {anneal_start} and {anneal_end}')
        self.anneal_start, self.anneal_end = anneal_start, anneal_end

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'random_ratio'):
            raise AttributeError(f'RandomnessAnnealingHook needs a model with random_ratio (RAR), '
                                 f'not {type(model).__name__}')
        r = randomness_ratio(runner.iter, self.anneal_start, self.anneal_end)
        model.random_ratio = r
        runner.message_hub.update_scalar('train/random_ratio', r)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class GANOptimWrapperConstructor:
    """Two optimizers: ``discriminator`` for the model's ``discriminator.*`` parameters,
    ``generator`` for all the others (a tokenizer trained with an adversarial loss).

    ``optim_wrapper = dict(constructor='GANOptimWrapperConstructor',
    generator=dict(type='OptimWrapper', optimizer=dict(...)),
    discriminator=dict(...))``. Parameters without ``requires_grad`` are left
    out; per-parameter options (``paramwise_cfg``) are not supported here.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        missing = {'generator', 'discriminator'} - set(optim_wrapper_cfg)
        if missing or paramwise_cfg:
            raise KeyError('GANOptimWrapperConstructor needs optim_wrapper.generator and '
                           'optim_wrapper.discriminator (and no paramwise_cfg); missing '
                           f'{sorted(missing)}')
        self.cfg = optim_wrapper_cfg

    def __call__(self, model) -> OptimWrapperDict:
        model = model.module if hasattr(model, 'module') else model
        params = {'generator': [], 'discriminator': []}
        for name, p in model.named_parameters():
            if p.requires_grad:
                params['discriminator' if name.startswith('discriminator.') else 'generator'].append(p)
        if not params['discriminator']:
            raise ValueError(f'{type(model).__name__} has no discriminator.* parameters for '
                             'GANOptimWrapperConstructor')
        wrappers = {}
        for key, group in params.items():
            cfg = dict(self.cfg[key])
            cfg.setdefault('type', 'OptimWrapper')
            cfg['optimizer'] = OPTIMIZERS.build(dict(cfg['optimizer'], params=group))
            wrappers[key] = OPTIM_WRAPPERS.build(cfg)
        return OptimWrapperDict(**wrappers)
