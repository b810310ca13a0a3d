"""Each pretraining method's demo config trains on the demo data through tools/train.py."""
import sys

import pytest

from ..conftest import REPO, run_tool
from .test_train_tools import losses

DEMOS = [
    'configs/beit/beit_vit-demo-p8_1xb32-coslr-20e_demo.py',
    'configs/beitv2/beitv2_vit-demo-p8_1xb32-coslr-20e_demo.py',
    'configs/beitv2/vqkd_vit-demo-p8_1xb32-coslr-20e_demo.py',
    'configs/cae/cae_vit-demo-p8_1xb32-coslr-20e_demo.py',
]


@pytest.mark.parametrize('config', DEMOS)
def test_demo_config_trains_and_loss_decreases(config, demo_root, tmp_path):
    work_dir = str(tmp_path)
    run_tool([sys.executable, 'tools/train.py', config, '--work-dir', work_dir, '--cfg-options',
              f'train_dataloader.dataset.data_root={demo_root}', 'train_dataloader.num_workers=0',
              'train_dataloader.persistent_workers=False', 'train_dataloader.batch_size=16',
              'train_cfg.max_epochs=3', 'default_hooks.logger.interval=1',
              'log_processor.window_size=1'], cwd=REPO)
    loss = losses(work_dir)
    assert len(loss) >= 8, loss
    first, last = sorted(loss)[:3], sorted(loss)[-3:]
    assert sum(loss[i] for i in last) < sum(loss[i] for i in first), loss
