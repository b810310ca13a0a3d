"""Layer-wise lr decay against written-out copies of the official MAE and BEiT rules."""
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmmim.engine import LayerDecayOptimWrapperConstructor

from ..conftest import REPO

CLS = osp.join(REPO, 'configs', 'benchmarks', 'classification')
TINY = dict(embed_dim=32, depth=3, num_heads=4, mlp_ratio=2.0)


def mae_param_groups_lrd(named_params, weight_decay, no_weight_decay_list, layer_decay):
    """facebookresearch/mae ``util/lr_decay.py`` (``param_groups_lrd`` and
    ``get_layer_id_for_vit``), written out: name -> (lr scale, weight decay)."""
    named_params = list(named_params)
    num_layers = len({n.split('.')[1] for n, _ in named_params if n.startswith('blocks.')}) + 1
    layer_scales = [layer_decay**(num_layers - i) for i in range(num_layers + 1)]
    out = {}
    for n, p in named_params:
        if not p.requires_grad:
            continue
        this_decay = 0.0 if p.ndim == 1 or n in no_weight_decay_list else weight_decay
        if n in ['cls_token', 'pos_embed'] or n.startswith('patch_embed'):
            layer_id = 0
        elif n.startswith('blocks'):
            layer_id = int(n.split('.')[1]) + 1
        else:
            layer_id = num_layers
        out[n] = (layer_scales[layer_id], this_decay)
    return out


def beit_parameter_groups(named_params, weight_decay, skip_list, layer_decay):
    """microsoft/unilm BEiT ``get_num_layer_for_vit`` with ``LayerDecayValueAssigner`` and
    ``get_parameter_groups``, written out: name -> (lr scale, weight decay)."""
    named_params = list(named_params)
    num_layers = len({n.split('.')[1] for n, _ in named_params if n.startswith('blocks.')})
    num_max_layer = num_layers + 2
    values = [layer_decay**(num_layers + 1 - i) for i in range(num_layers + 2)]
    out = {}
    for name, p in named_params:
        if not p.requires_grad:
            continue
        if len(p.shape) == 1 or name.endswith('.bias') or name in skip_list:
            this_decay = 0.0
        else:
            this_decay = weight_decay
        if name in ('cls_token', 'mask_token', 'pos_embed') or name.startswith('patch_embed'):
            layer_id = 0
        elif name.startswith('rel_pos_bias'):
            layer_id = num_max_layer - 1
        elif name.startswith('blocks'):
            layer_id = int(name.split('.')[1]) + 1
        else:
            layer_id = num_max_layer - 1
        out[name] = (values[layer_id], this_decay)
    return out


def official_names(model):
    """The classifier's parameters under the official names (no ``backbone.``, ``head.*``)."""
    for n, p in model.named_parameters():
        n = n[len('backbone.'):] if n.startswith('backbone.') else n.replace('head.fc.', 'head.')
        yield n, p


def mmmim_groups(model, rate, wd=0.05):
    ctor = LayerDecayOptimWrapperConstructor(
        dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1.0, weight_decay=wd)),
        dict(layer_decay_rate=rate))
    out = {}
    for g in ctor.param_groups(model):
        for n in g['param_names']:
            n = n[len('backbone.'):] if n.startswith('backbone.') else n.replace('head.fc.', 'head.')
            out[n] = (g['lr'], g['weight_decay'])
    return out


def classifier(config, **backbone):
    from mmpretrain.registry import MODELS
    cfg = Config.fromfile(osp.join(CLS, config))
    cfg.model.backbone.update(init_cfg=None, arch=TINY, img_size=32, patch_size=8, **backbone)
    cfg.model.head.in_channels = TINY['embed_dim']
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg.model)


def assert_same(ours, ref):
    assert set(ours) == set(ref)
    for n in ref:
        assert ours[n][0] == pytest.approx(ref[n][0], rel=1e-12), n
        assert ours[n][1] == ref[n][1], n


def test_mae_finetuning_follows_param_groups_lrd():
    model = classifier('vit-demo-p8_mae-pre_1xb32-coslr-10e_demo-ft.py')
    ref = mae_param_groups_lrd(official_names(model), 0.05, {'pos_embed', 'cls_token'}, 0.65)
    assert_same(mmmim_groups(model, 0.65), ref)
    assert ref['pos_embed'] == (0.65**4, 0.0) and ref['head.weight'] == (1.0, 0.05)


@pytest.mark.parametrize('rel_pos_bias', ['per_layer', 'shared'])
def test_beit_finetuning_follows_get_num_layer_for_vit(rel_pos_bias):
    model = classifier('vit-demo-p8_beit-pre_1xb32-coslr-10e_demo-ft.py', rel_pos_bias=rel_pos_bias)
    ref = beit_parameter_groups(official_names(model), 0.05, {'pos_embed', 'cls_token'}, 0.65)
    assert_same(mmmim_groups(model, 0.65), ref)
    if rel_pos_bias == 'shared':  # the shared table is at the top depth, full lr
        assert ref['rel_pos_bias.relative_position_bias_table'] == (1.0, 0.05)
    else:
        assert ref['blocks.0.attn.relative_position_bias_table'] == (0.65**3, 0.05)
