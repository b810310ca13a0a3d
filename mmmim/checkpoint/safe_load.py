"""Safe loading of MMEngine checkpoints with ``torch.load(weights_only=True)``."""
import pickle

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

try:  # numpy >= 2
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar

_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _history_buffer_getattr(obj, name: str):
    """Stand-in for ``getattr`` in checkpoints: only ``HistoryBuffer``'s statistics.

    MMEngine's message hub pickles ``HistoryBuffer.min`` and friends as
    ``getattr(HistoryBuffer, 'min')``; a real ``getattr`` would open every
    attribute of every allowed object, so nothing else is resolved.
    """
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(obj, name)
    raise pickle.UnpicklingError(f'checkpoint asks for getattr({obj!r}, {name!r}), which is not allowed')


def allow_mmengine_checkpoint_types() -> None:
    """Allow-list the non-tensor objects MMEngine writes into its checkpoints.

    MMEngine stores the message hub's ``HistoryBuffer`` objects (numpy arrays
    and scalars inside) in ``checkpoint['message_hub']``; torch >= 2.6 refuses
    them under ``weights_only=True``, which breaks ``--resume``. Only these
    types are added, and ``getattr`` is replaced by a function that resolves
    HistoryBuffer's statistics methods and nothing else.
    """
    dtype_classes = [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]
    torch.serialization.add_safe_globals([
        HistoryBuffer, np.ndarray, np.dtype, _reconstruct, scalar, *dtype_classes,
        (_history_buffer_getattr, 'builtins.getattr'),
        (_history_buffer_getattr, '__builtin__.getattr'),
    ])
