"""Reading the tensors of a pickled DALL-E dVAE (``encoder.pkl``) without running it.

The official file is a whole pickled ``dall_e.encoder.Encoder`` module. It is
read with ``torch.load(weights_only=True)``: the module classes it names are
mapped to a record that only keeps its state, so no code of the file or of
the ``dall_e`` package runs, and the package need not be installed.
"""
from typing import Dict

import torch

from .io import torch_load

# Classes a DALL-E encoder / decoder pickle names.
DALLE_CLASSES = (
    'dall_e.encoder.Encoder', 'dall_e.encoder.EncoderBlock', 'dall_e.decoder.Decoder',
    'dall_e.decoder.DecoderBlock', 'dall_e.utils.Conv2d',
    'torch.nn.modules.container.Sequential', 'torch.nn.modules.activation.ReLU',
    'torch.nn.modules.pooling.MaxPool2d', 'torch.nn.modules.linear.Identity',
    'torch.nn.modules.upsampling.Upsample',
)


class _ModuleRecord:
    """Stands in for a pickled module: keeps the pickled attribute dict, nothing else."""

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {}


def _collect(record, prefix: str, out: Dict[str, torch.Tensor]) -> None:
    state = getattr(record, 'state', {})
    for group in ('_parameters', '_buffers'):
        for name, tensor in (state.get(group) or {}).items():
            if tensor is not None:
                out[prefix + name] = tensor.detach()
    for name, child in (state.get('_modules') or {}).items():
        if isinstance(child, _ModuleRecord):
            _collect(child, f'{prefix}{name}.', out)


def read_dalle_encoder(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a pickled DALL-E module by module path (``blocks.group_1.block_1.res_path.conv_1.w``)."""
    allowed = [(_ModuleRecord, name) for name in DALLE_CLASSES]
    with torch.serialization.safe_globals(allowed):
        root = torch_load(path)
    if not isinstance(root, _ModuleRecord):
        raise ValueError(f'{path} does not hold a pickled DALL-E module')
    out: Dict[str, torch.Tensor] = {}
    _collect(root, '', out)
    if not out:
        raise ValueError(f'{path} holds a module without tensors')
    return out
