from .algorithms import *  # noqa: F401,F403
from .backbones import *  # noqa: F401,F403
from .generators import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .multimodal import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .tokenizers import *  # noqa: F401,F403
