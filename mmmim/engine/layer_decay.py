"""Layer-wise learning-rate decay (BEiT, MAE fine-tuning) for any OpenMMLab model."""
from collections import defaultdict
from typing import List, Optional

import torch
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor
from mmengine.registry import OPTIM_WRAPPERS, OPTIMIZERS
from torch import nn

from mmmim.registry import OPTIM_WRAPPER_CONSTRUCTORS

# Parameters without weight decay besides 1-D ones (norms, biases, layer scales):
# the ``no_weight_decay()`` sets of the official MAE and BEiT fine-tuning models.
# Relative position tables are decayed, as there (BEiT's
# --disable_weight_decay_on_rel_pos_bias is custom_keys with decay_mult=0 here).
NO_DECAY_NAMES = ('pos_embed', 'cls_token')


def no_weight_decay(name: str, param: torch.Tensor) -> bool:
    """Norms, biases, layer scales, the position embedding and the class token."""
    return param.ndim <= 1 or name.endswith('.bias') or name.split('.')[-1] in NO_DECAY_NAMES


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class LayerDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """Scale each parameter's lr by ``layer_decay_rate ** (num_layers - 1 - layer_id)``.

    The layer id comes from the backbone's ``get_layer_depth(name, prefix)``
    (parameters outside the backbone get the top layer, scale 1). Weight
    decay is 0 for :func:`no_weight_decay` parameters, matched on the last
    name component so that prefixed names (``backbone.pos_embed``) count.
    Parameters sharing (lr, weight decay) form one group, named after its
    layer (``layer_3``; ``layers_0-13`` when it spans several), so that
    :class:`~mmmim.engine.GroupLrHook` can log each layer's lr.

    ``paramwise_cfg`` keys:
        layer_decay_rate (float): The decay per layer (0.65 for MAE ViT-B).
        custom_keys (dict): ``{substring: dict(lr_mult=..., decay_mult=...)}``
            applied on top, the longest matching substring winning.
        backbone (str): Attribute of the model holding the backbone.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        super().__init__(optim_wrapper_cfg, None)
        cfg = dict(paramwise_cfg or {})
        self.layer_decay_rate = float(cfg.pop('layer_decay_rate', 1.0))
        self.custom_keys = dict(cfg.pop('custom_keys', {}))
        self.backbone_attr = cfg.pop('backbone', 'backbone')
        if cfg:
            raise KeyError(f'unknown paramwise_cfg keys for LayerDecayOptimWrapperConstructor: '
                           f'{sorted(cfg)} (expected layer_decay_rate, custom_keys, backbone)')

    def param_groups(self, model: nn.Module) -> List[dict]:
        """Parameter groups with their ``lr`` and ``weight_decay`` set."""
        backbone = getattr(model, self.backbone_attr, None)
        if not hasattr(backbone, 'get_layer_depth'):
            raise AttributeError(
                f'{type(model).__name__}.{self.backbone_attr} ({type(backbone).__name__}) has no '
                'get_layer_depth(); layer-wise lr decay needs an mmmim backbone')
        base_lr = self.optimizer_cfg['lr']
        base_wd = self.optimizer_cfg.get('weight_decay', 0.0)
        keys = sorted(self.custom_keys, key=len, reverse=True)
        groups = defaultdict(list)
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            layer_id, num_layers = backbone.get_layer_depth(name, prefix=self.backbone_attr + '.')
            scale = self.layer_decay_rate**(num_layers - 1 - layer_id)
            custom = next((self.custom_keys[k] for k in keys if k in name), {})
            lr = base_lr * scale * custom.get('lr_mult', 1.0)
            wd = 0.0 if no_weight_decay(name, param) else base_wd * custom.get('decay_mult', 1.0)
            groups[(lr, wd)].append((name, param, layer_id))
        out = []
        for (lr, wd), members in sorted(groups.items(), key=lambda kv: (kv[1][0][2], -kv[0][1])):
            ids = sorted({layer_id for _, _, layer_id in members})
            name = f'layer_{ids[0]}' if len(ids) == 1 else f'layers_{ids[0]}-{ids[-1]}'
            out.append(dict(params=[p for _, p, _ in members], lr=lr, weight_decay=wd, name=name,
                            param_names=[n for n, _, _ in members]))
        return out

    def __call__(self, model: nn.Module):
        if is_model_wrapper(model):
            model = model.module
        groups = self.param_groups(model)
        lines = [f'layer-wise lr decay {self.layer_decay_rate}: {len(groups)} parameter groups',
                 f'  {"group":<12} {"lr":>10} {"lr scale":>9} {"decay":>7} {"params":>7}  '
                 'first parameter']
        base_lr = self.optimizer_cfg['lr']
        for g in groups:
            lines.append(f'  {g["name"]:<12} {g["lr"]:10.3e} {g["lr"] / base_lr:9.4f} '
                         f'{g["weight_decay"]:7.3f} {len(g["params"]):7d}  {g["param_names"][0]}')
        print_log('\n'.join(lines), logger='current')
        for g in groups:
            del g['param_names']
        optimizer_cfg = dict(self.optimizer_cfg, params=groups)
        optimizer = OPTIMIZERS.build(optimizer_cfg)
        return OPTIM_WRAPPERS.build(dict(self.optim_wrapper_cfg), default_args=dict(optimizer=optimizer))
