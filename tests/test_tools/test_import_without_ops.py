"""``import mmmim`` and MIM pretraining with mmcv-lite: no compiled mmcv ops, no mmseg, no mmdet.

The subprocess marks ``mmcv._ext``, ``mmseg`` and ``mmdet`` as not installed
(``None`` in ``sys.modules``: importing them raises ModuleNotFoundError and
``importlib.util.find_spec`` finds nothing, as on a machine with mmcv-lite)
before anything imports them, then trains the MAE, BEiT and CAE demos for one
iteration each through tools/train.py.
"""
import sys

from ..conftest import REPO, run_tool
from .test_train_tools import losses

DEMOS = [
    'configs/mae/mae_vit-demo-p8_1xb32-coslr-80e_demo.py',
    'configs/beit/beit_vit-demo-p8_1xb32-coslr-20e_demo.py',
    'configs/cae/cae_vit-demo-p8_1xb32-coslr-20e_demo.py',
]
SCRIPT = '''
import runpy, sys
ABSENT = ('mmcv._ext', 'mmseg', 'mmdet')
for name in ABSENT:
    sys.modules[name] = None
from mmengine.utils.dl_utils import mmcv_full_available
assert not mmcv_full_available()
import mmmim  # noqa: F401
train = runpy.run_path('tools/train.py')['main']
data_root, work_root, *configs = sys.argv[1:]
for i, config in enumerate(configs):
    train([config, '--work-dir', f'{work_root}/{i}', '--cfg-options',
           f'train_dataloader.dataset.data_root={data_root}', 'train_dataloader.dataset.indices=4',
           'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
           'train_dataloader.persistent_workers=False', 'train_cfg.max_epochs=1',
           'default_hooks.logger.interval=1'])
loaded = sorted(k for k, m in sys.modules.items() if m is not None
                and (k.split('.')[0] in ('mmseg', 'mmdet') or k.startswith('mmcv.ops')))
print('loaded:', loaded)
'''


def test_pretraining_demos_train_without_compiled_ops(demo_root, tmp_path):
    proc = run_tool([sys.executable, '-c', SCRIPT, str(demo_root), str(tmp_path), *DEMOS], cwd=REPO)
    assert 'loaded: []' in proc.stdout
    for i, config in enumerate(DEMOS):
        assert list(losses(str(tmp_path / str(i)))) == [1], config
