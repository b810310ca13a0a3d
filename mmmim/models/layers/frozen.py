"""Networks that produce targets: frozen, and in eval mode whenever they run."""
from contextlib import contextmanager

from torch import nn


def freeze(module: nn.Module) -> nn.Module:
    """No trainable parameters and eval mode (no dropout, drop path, EMA or batch statistics)."""
    module.requires_grad_(False)
    return module.eval()


@contextmanager
def eval_mode(module: nn.Module):
    """Run ``module`` in eval mode, then restore each submodule's own mode."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        for m, training in modes:
            m.training = training
