"""What every masked-image-modeling algorithm shares: building, mode dispatch, features."""
from typing import List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import nn

from mmmim.registry import MODELS
from ..layers import freeze


class BaseMIM(BaseModel):
    """A backbone plus whatever the method adds; subclasses implement ``loss``.

    Networks that produce targets (tokenizers, teachers) are built with
    :meth:`build_target`: they have no trainable parameters and stay in eval
    mode whatever mode the algorithm is put in.

    Args:
        backbone: The encoder config (a ViT variant).
        data_preprocessor: Normalisation of the input batch.
        init_cfg: MMEngine init config.
    """

    def __init__(self, backbone: dict, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self._target_names: Tuple[str, ...] = ()

    def build_target(self, name: str, cfg: dict) -> nn.Module:
        """Build the target network ``cfg`` as attribute ``name``: frozen, in eval mode."""
        net = freeze(MODELS.build(cfg))
        setattr(self, name, net)
        self._target_names += (name, )
        return net

    def train(self, mode: bool = True):
        super().train(mode)
        for name in self._target_names:
            getattr(self, name).eval()
        return self

    @staticmethod
    def _images(inputs: Union[torch.Tensor, List[torch.Tensor]]) -> torch.Tensor:
        """The patch view: multi-view pipelines give a list whose first entry it is."""
        return inputs[0] if isinstance(inputs, (list, tuple)) else inputs

    @staticmethod
    def _masks(data_samples, device) -> torch.Tensor:
        """The block masks of the data samples as ``[B, L]`` bool (True = masked)."""
        if not data_samples or 'mask' not in data_samples[0]:
            raise KeyError('the data samples carry no mask: put BlockwiseMaskGenerator in the '
                           'pipeline before PackInputs')
        return torch.stack([s.mask for s in data_samples]).flatten(1).to(device, torch.bool)

    @staticmethod
    def _check_tokens(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Visual tokens ``[B, L]``, with a clear error unless there is one per patch."""
        if tokens.shape != mask.shape:
            raise ValueError(f'the tokenizer gives {tokens.shape[1]} tokens per image but the '
                             f'backbone sees {mask.shape[1]} patches: match the tokenizer view '
                             'size (second_scale) to the patch grid')
        return tokens

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        """MMEngine entry: ``'loss'``, ``'predict'`` or ``'tensor'`` (features)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def extract_feat(self, inputs) -> tuple:
        """Features of the unmasked images (all patches), as the backbone's ``out_type``."""
        return self.backbone(self._images(inputs))

    def loss(self, inputs, data_samples=None) -> dict:
        raise NotImplementedError

    def predict(self, inputs, data_samples=None):
        raise NotImplementedError(f'{type(self).__name__} has no predict mode; use mode="tensor" '
                                  'for features')
