"""mmmim: masked image modeling on MMEngine."""
from mmpretrain.utils import register_all_modules as _register_mmpretrain

from . import registry  # noqa: F401  (before the modules that register)
from .apis import *  # noqa: F401,F403
from .checkpoint import allow_mmengine_checkpoint_types
from .datasets import *  # noqa: F401,F403
from .engine import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .models import *  # noqa: F401,F403
from .version import __version__

# mmpretrain's datasets, transforms, preprocessors and metrics resolve in mmmim's
# child registries only once registered in mmpretrain's.
_register_mmpretrain(init_default_scope=False)
allow_mmengine_checkpoint_types()

__all__ = ['__version__']
