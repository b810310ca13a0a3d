"""model-index.yml and the metafiles: well formed, and every named config exists and builds.

Models are built with weight initialisation switched off (the init functions
leave tensors as allocated): building checks the config's types, arguments
and shapes; ``test_configs.py`` checks initialised full-size builds.
"""
import contextlib
import copy
import os.path as osp
from unittest import mock

import pytest
import torch
import yaml
from mmengine.config import Config
from mmengine.registry import DefaultScope

from .conftest import REPO

RESULT_KEYS = {'Task', 'Dataset', 'Metrics', 'Source'}


def load(path):
    with open(osp.join(REPO, path)) as f:
        return yaml.safe_load(f)


METAFILES = load('model-index.yml')['Import']
MODELS = [(path, m) for path in METAFILES for m in load(path)['Models']]
COLLECTIONS = {c['Name']: c for path in METAFILES for c in load(path).get('Collections', [])}


def test_the_index_imports_every_method_and_benchmark_metafile():
    folders = ['mae', 'beit', 'beitv2', 'cae', 'benchmarks/classification',
               'benchmarks/segmentation', 'benchmarks/detection']
    assert METAFILES == [f'configs/{f}/metafile.yml' for f in folders]
    names = [m['Name'] for _, m in MODELS]
    assert len(names) == len(set(names)), 'model names repeat'


@pytest.mark.parametrize('name', sorted(COLLECTIONS))
def test_collections_name_their_paper_readme_and_code(name):
    c = COLLECTIONS[name]
    assert c['Paper']['Title'] and c['Paper']['URL'].startswith('https://')
    assert osp.isfile(osp.join(REPO, c['README'])), c['README']
    assert c['Code']['URL'].startswith('https://')


@pytest.mark.parametrize('path,model', MODELS, ids=[m['Name'] for _, m in MODELS])
def test_models_are_well_formed(path, model):
    assert model['In Collection'] in COLLECTIONS
    assert model['Config'] == f'{osp.dirname(path)}/{model["Name"]}.py'
    assert osp.isfile(osp.join(REPO, model['Config'])), model['Config']
    assert 'Weights' in model and 'Results' in model
    for result in (model['Results'] or []) + model.get('Published Results', []):
        assert RESULT_KEYS <= set(result), result
        assert all(isinstance(v, (int, float)) for v in result['Metrics'].values()), result
    downstream = set(model.get('Downstream', []))
    assert downstream <= {m['Name'] for _, m in MODELS}, downstream


@contextlib.contextmanager
def no_weight_init():
    """Every init function and random fill leaves or zeroes its tensor (fast, deterministic)."""
    keep = lambda t, *args, **kwargs: t  # noqa: E731
    with contextlib.ExitStack() as stack:
        for name in ('trunc_normal_', 'normal_', 'uniform_', 'xavier_uniform_', 'xavier_normal_',
                     'kaiming_uniform_', 'kaiming_normal_', 'constant_', 'zeros_', 'ones_'):
            stack.enter_context(mock.patch.object(torch.nn.init, name, keep))
        for name in ('normal_', 'uniform_'):
            stack.enter_context(mock.patch.object(torch.Tensor, name, lambda t, *a, **k: t.zero_()))
        yield


def without_pretrained(cfg):
    """The model config with every ``Pretrained`` init_cfg removed (no files are read)."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('init_cfg'), dict) and 'checkpoint' in cfg['init_cfg']:
            cfg.pop('init_cfg')
        for v in cfg.values():
            without_pretrained(v)
    elif isinstance(cfg, list):
        for v in cfg:
            without_pretrained(v)
    return cfg


def registry(scope):
    if scope == 'mmmim':
        from mmmim.registry import MODELS
        return MODELS
    if scope == 'mmseg':
        from mmseg.registry import MODELS
        from mmseg.utils import register_all_modules
    elif scope == 'mmdet':
        from mmdet.registry import MODELS
        from mmdet.utils import register_all_modules
    else:
        from mmpretrain.registry import MODELS
        from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    return MODELS


# configs that differ only in their schedule build once
CONFIGS = {}
for _, _model in MODELS:
    _cfg = Config.fromfile(osp.join(REPO, _model['Config']))
    CONFIGS.setdefault((_cfg.default_scope, repr(_cfg.model)), _model['Config'])


@pytest.mark.parametrize('config', sorted(CONFIGS.values()), ids=osp.basename)
def test_listed_configs_build(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    model_cfg = without_pretrained(copy.deepcopy(cfg.model))
    with DefaultScope.overwrite_default_scope(cfg.default_scope), no_weight_init(), \
            torch.no_grad():
        model = registry(cfg.default_scope).build(model_cfg)
    backbone = getattr(model, 'backbone', model)
    assert type(backbone).__module__.startswith('mmmim'), type(backbone)
