"""Registries of mmmim.

Each is a child of mmpretrain's registry of the same kind, so mmpretrain's
datasets, transforms, data preprocessors and metrics resolve inside mmmim
configs with no prefix, and mmmim's modules resolve from mmseg / mmdet /
mmpretrain configs as ``type='mmmim.ViT'``.
"""
from mmengine.registry import Registry
from mmpretrain import registry as mmpretrain

RUNNERS = Registry('runner', parent=mmpretrain.RUNNERS, scope='mmmim')
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=mmpretrain.RUNNER_CONSTRUCTORS, scope='mmmim')
LOOPS = Registry('loop', parent=mmpretrain.LOOPS, scope='mmmim', locations=['mmmim.evaluation'])
HOOKS = Registry('hook', parent=mmpretrain.HOOKS, scope='mmmim', locations=['mmmim.engine'])
LOG_PROCESSORS = Registry('log processor', parent=mmpretrain.LOG_PROCESSORS, scope='mmmim')
OPTIMIZERS = Registry('optimizer', parent=mmpretrain.OPTIMIZERS, scope='mmmim')
OPTIM_WRAPPERS = Registry('optim_wrapper', parent=mmpretrain.OPTIM_WRAPPERS, scope='mmmim')
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=mmpretrain.OPTIM_WRAPPER_CONSTRUCTORS,
    scope='mmmim',
    locations=['mmmim.engine'])
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=mmpretrain.PARAM_SCHEDULERS, scope='mmmim')
DATASETS = Registry(
    'dataset', parent=mmpretrain.DATASETS, scope='mmmim', locations=['mmmim.datasets'])
DATA_SAMPLERS = Registry('data sampler', parent=mmpretrain.DATA_SAMPLERS, scope='mmmim')
TRANSFORMS = Registry(
    'transform', parent=mmpretrain.TRANSFORMS, scope='mmmim', locations=['mmmim.datasets'])
MODELS = Registry('model', parent=mmpretrain.MODELS, scope='mmmim', locations=['mmmim.models'])
MODEL_WRAPPERS = Registry('model_wrapper', parent=mmpretrain.MODEL_WRAPPERS, scope='mmmim')
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=mmpretrain.WEIGHT_INITIALIZERS, scope='mmmim')
METRICS = Registry('metric', parent=mmpretrain.METRICS, scope='mmmim', locations=['mmmim.evaluation'])
EVALUATORS = Registry('evaluator', parent=mmpretrain.EVALUATORS, scope='mmmim')
VISUALIZERS = Registry('visualizer', parent=mmpretrain.VISUALIZERS, scope='mmmim')
VISBACKENDS = Registry('vis_backend', parent=mmpretrain.VISBACKENDS, scope='mmmim')
TASK_UTILS = Registry('task util', parent=mmpretrain.TASK_UTILS, scope='mmmim')
