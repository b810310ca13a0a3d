"""BLIP's ITC distillation-weight warm-up."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmim.registry import HOOKS


def itc_alpha(alpha: float, step: int, warmup_steps: int) -> float:
    """The ITC soft-target weight, ramped linearly from 0 to ``alpha`` over ``warmup_steps``."""
    return alpha * min(1.0, step / warmup_steps) if warmup_steps > 0 else alpha


@HOOKS.register_module()
class ITCAlphaWarmupHook(Hook):
    """Set ``model.itc_alpha`` before every training iteration.

    As the official scripts: ``alpha * min(1, i / (warmup_epochs * iters per
    epoch))`` with i the global iteration, over two epochs in pretraining
    (pretrain.py) and one in retrieval fine-tuning (train_retrieval.py).
    The model's ``alpha`` is the target value.
    """
    priority = 'NORMAL'

    def __init__(self, warmup_epochs: float = 2):
        self.warmup_epochs = warmup_epochs

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        steps = int(round(self.warmup_epochs * len(runner.train_dataloader)))
        model.itc_alpha = itc_alpha(model.alpha, runner.iter, steps)
