"""Skip optimizer steps whose loss or gradients are not finite; stop or reload after too many.

Two optim wrappers take the decision at each step (they see the loss and
the gradients before the optimizer does); :class:`NonFiniteGuardHook` logs
the skips, and after ``max_consecutive`` of them in a row stops with an
error naming the iteration, the loss terms and the last good checkpoint,
or reloads that checkpoint and goes on at a lower lr.
"""
import math
from typing import Optional, Tuple

import torch
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import AmpOptimWrapper, OptimWrapper
from mmengine.runner import load_checkpoint

from mmmim.registry import HOOKS, OPTIM_WRAPPERS

APPLIED, SKIPPED, AMP_SKIPPED = 'applied', 'skipped', 'amp_skipped'


class NonFiniteGuardMixin:
    """The step decision shared by :class:`NonFiniteSkipOptimWrapper` and
    :class:`NonFiniteSkipAmpOptimWrapper`.

    A step is skipped (no optimizer update, gradients cleared) when a loss
    of the accumulation window or the total gradient norm is NaN or inf on
    any rank, so all ranks skip together. Counters: ``skipped_steps``,
    ``consecutive_skips`` (since the last applied step), ``amp_skipped_steps``
    and ``consecutive_amp_skips`` (steps the dynamic loss scale skipped);
    ``step_result`` is the outcome of this iteration's step, ``None`` on
    iterations that only accumulate gradients.
    """

    def _init_guard(self) -> None:
        self.skipped_steps = self.consecutive_skips = 0
        self.amp_skipped_steps = self.consecutive_amp_skips = 0
        self.step_result: Optional[str] = None
        self.last_grad_norm = float('nan')
        self._losses_finite = True

    def update_params(self, loss: torch.Tensor, step_kwargs=None, zero_kwargs=None) -> None:
        self.step_result = None
        self._losses_finite &= bool(torch.isfinite(loss.detach()).all())
        super().update_params(loss, step_kwargs, zero_kwargs)

    def _grad_norm(self) -> float:
        grads = [p.grad for group in self.optimizer.param_groups for p in group['params']
                 if p.grad is not None]
        return float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0

    def _check(self) -> Tuple[bool, bool]:
        """Whether the window's losses and the gradients are finite on every rank.

        One all-reduce, so that all ranks decide alike (the gradients are
        synchronised already, the losses are not).
        """
        self.last_grad_norm = self._grad_norm()
        bad = torch.tensor([float(not self._losses_finite),
                            float(not math.isfinite(self.last_grad_norm))])
        all_reduce(bad, op='max')
        self._losses_finite = True
        return not bool(bad[0]), not bool(bad[1])

    def _record(self, result: str) -> None:
        self.step_result = result
        if result == APPLIED:
            self.consecutive_skips = self.consecutive_amp_skips = 0
        elif result == SKIPPED:
            self.skipped_steps += 1
            self.consecutive_skips += 1
        else:
            self.amp_skipped_steps += 1
            self.consecutive_amp_skips += 1


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipOptimWrapper(NonFiniteGuardMixin, OptimWrapper):
    """``OptimWrapper`` that skips non-finite steps (see :class:`NonFiniteGuardMixin`)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_guard()

    def step(self, **kwargs) -> None:
        if not all(self._check()):
            self._record(SKIPPED)
            return
        super().step(**kwargs)
        self._record(APPLIED)


@OPTIM_WRAPPERS.register_module()
class NonFiniteSkipAmpOptimWrapper(NonFiniteGuardMixin, AmpOptimWrapper):
    """``AmpOptimWrapper`` that skips non-finite steps.

    Gradients are unscaled first. With a dynamic fp16 loss scale, non-finite
    gradients under a finite loss are an overflow of the scale: the step
    goes to the ``GradScaler``, which skips it and lowers the scale, and it
    counts as an AMP skip. Otherwise (a non-finite loss; any non-finite
    gradient in bf16 or with a fixed scale) the guard skips the step and
    leaves the scale as it is.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_guard()

    def _overflow_possible(self) -> bool:
        return (self.loss_scaler.is_enabled() and self._scale_update_param is None
                and self.cast_dtype in (None, torch.float16))

    def step(self, **kwargs) -> None:
        self.loss_scaler.unscale_(self.optimizer)
        losses_finite, grads_finite = self._check()
        overflow = losses_finite and not grads_finite and self._overflow_possible()
        if not (losses_finite and grads_finite) and not overflow:
            self.loss_scaler.update(self.loss_scaler.get_scale())  # reset, scale unchanged
            self._record(SKIPPED)
            return
        if self.clip_grad_kwargs and not overflow:
            self._clip_grad()
        self.loss_scaler.step(self.optimizer, **kwargs)  # skips itself on an overflow
        self.loss_scaler.update(self._scale_update_param)
        self._record(AMP_SKIPPED if overflow else APPLIED)


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Log the non-finite steps that the optim wrapper skipped; stop or reload after a run of them.

    Needs ``optim_wrapper.type='NonFiniteSkipOptimWrapper'`` or
    ``'NonFiniteSkipAmpOptimWrapper'``. Each skip is logged with its loss
    terms; the counts join the log as ``nonfinite_skips`` / ``amp_skips``.
    After ``max_consecutive`` skipped steps in a row (or
    ``max_consecutive_amp`` skips by the dynamic loss scale, which then has
    fallen by ``2 ** max_consecutive_amp``) training stops with an error
    naming the iteration, the loss terms and the last checkpoint saved before
    the run of skips began. With ``reload=True`` that checkpoint's weights
    and optimizer state are loaded instead (the iteration count and data
    order go on), every lr is multiplied by ``lr_factor``, and training
    continues, at most ``max_reloads`` times.

    Args:
        max_consecutive: Skipped steps in a row that end training.
        max_consecutive_amp: AMP-skipped steps in a row that end training.
        reload: Reload the last good checkpoint instead of stopping.
        lr_factor: lr multiplier at each reload.
        max_reloads: Reloads before stopping anyway.
    """

    priority = 'NORMAL'  # before LoggerHook writes the counts and CheckpointHook saves

    def __init__(self,
                 max_consecutive: int = 5,
                 max_consecutive_amp: int = 20,
                 reload: bool = False,
                 lr_factor: float = 0.5,
                 max_reloads: int = 3):
        if max_consecutive < 1 or max_consecutive_amp < 1:
            raise ValueError('NonFiniteGuardHook max_consecutive and max_consecutive_amp must be '
                             '>= 1')
        if not 0.0 < lr_factor < 1.0:
            raise ValueError(f'NonFiniteGuardHook lr_factor must be in (0, 1), got {lr_factor}')
        self.max_consecutive = max_consecutive
        self.max_consecutive_amp = max_consecutive_amp
        self.reload = reload
        self.lr_factor = lr_factor
        self.max_reloads = max_reloads
        self.reloads = 0
        self._good_ckpt = None

    def before_train(self, runner) -> None:
        if not isinstance(runner.optim_wrapper, NonFiniteGuardMixin):
            raise TypeError(
                'NonFiniteGuardHook reads the step decisions of a guarding optim wrapper; set '
                "optim_wrapper.type='NonFiniteSkipOptimWrapper' (or "
                f"'NonFiniteSkipAmpOptimWrapper' for AMP) instead of "
                f'{type(runner.optim_wrapper).__name__}')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        wrapper = runner.optim_wrapper
        runner.message_hub.update_scalar('train/nonfinite_skips', wrapper.skipped_steps)
        runner.message_hub.update_scalar('train/amp_skips', wrapper.amp_skipped_steps)
        if wrapper.step_result in (None, APPLIED):
            return
        terms = ', '.join(f'{k}: {float(v.detach() if torch.is_tensor(v) else v):.4g}'
                          for k, v in (outputs or {}).items())
        if wrapper.step_result == AMP_SKIPPED:
            runner.logger.info(f'iteration {runner.iter + 1}: the dynamic loss scale skipped the '
                               f'step (scale now {wrapper.loss_scaler.get_scale():g}; '
                               f'{wrapper.consecutive_amp_skips} in a row)')
            if wrapper.consecutive_amp_skips >= self.max_consecutive_amp:
                self._fail(runner, f'{wrapper.consecutive_amp_skips} steps in a row overflowed the '
                           'fp16 loss scale', terms)
            return
        if wrapper.consecutive_skips == 1:  # the run of skips begins: checkpoints so far are good
            self._good_ckpt = runner.message_hub.get_info('last_ckpt')
        runner.logger.warning(
            f'iteration {runner.iter + 1}: skipped a non-finite step (loss terms {terms}; grad '
            f'norm {wrapper.last_grad_norm:.4g}); {wrapper.consecutive_skips} in a row, '
            f'{wrapper.skipped_steps} in this run')
        if wrapper.consecutive_skips < self.max_consecutive:
            return
        reason = f'{wrapper.consecutive_skips} non-finite steps in a row'
        if self.reload and self._good_ckpt and self.reloads < self.max_reloads:
            self._reload(runner, reason)
        else:
            self._fail(runner, reason, terms)

    def _fail(self, runner, reason: str, terms: str) -> None:
        ckpt = self._good_ckpt or runner.message_hub.get_info('last_ckpt')
        where = f'the last good checkpoint is {ckpt}' if ckpt else 'no checkpoint was saved yet'
        raise RuntimeError(
            f'{reason} at iteration {runner.iter + 1} (loss terms of the last: {terms}); the '
            f'skipped steps left the weights unchanged; {where}. Resume from it with a lower lr '
            '(--resume with --cfg-options optim_wrapper.optimizer.lr=...), or let '
            'NonFiniteGuardHook(reload=True) do so'
            + (f' (it reloaded {self.reloads} times already)' if self.reloads else ''))

    def _reload(self, runner, reason: str) -> None:
        """Load the good checkpoint's weights and optimizer state; lr times ``lr_factor``."""
        wrapper = runner.optim_wrapper
        hyper = [{k: v for k, v in g.items() if k != 'params'} for g in wrapper.param_groups]
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        ckpt = load_checkpoint(model, self._good_ckpt, map_location='cpu', logger=runner.logger)
        if 'optimizer' in ckpt:
            wrapper.load_state_dict(ckpt['optimizer'])
        for group, saved in zip(wrapper.param_groups, hyper):  # keep the schedule's position
            group.update(saved)
            group['lr'] *= self.lr_factor
            if 'initial_lr' in group:
                group['initial_lr'] *= self.lr_factor
        if wrapper.base_param_settings is not None:
            wrapper.base_param_settings['lr'] *= self.lr_factor
        schedulers = runner.param_schedulers or []
        if isinstance(schedulers, dict):
            schedulers = [s for group in schedulers.values() for s in group]
        for scheduler in schedulers:
            if scheduler.param_name == 'lr':
                scheduler.base_values = [v * self.lr_factor for v in scheduler.base_values]
        wrapper.consecutive_skips = 0
        self.reloads += 1
        runner.logger.warning(
            f'{reason} at iteration {runner.iter + 1}: reloaded the weights and optimizer state of '
            f'{self._good_ckpt} and multiplied the lr by {self.lr_factor} (reload {self.reloads} '
            f'of at most {self.max_reloads}); training goes on from iteration {runner.iter + 2}')
