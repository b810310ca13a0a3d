"""The k-NN hook: a curve in the logs during pretraining, the same number as knn_eval.py."""
import glob
import importlib.util
import json
import os.path as osp
import re
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import Runner

from mmmim.engine import KNNEvalHook, knn_hook
from mmmim.registry import MODELS

from ..conftest import DEMO_CONFIG, REPO


def knn_eval_tool():
    path = osp.join(REPO, 'tools', 'analysis_tools', 'knn_eval.py')
    spec = importlib.util.spec_from_file_location('mmmim_knn_eval_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mae_demo_logs_a_knn_curve_that_matches_knn_eval(demo_root, tmp_path, capsys):
    cfg = Config.fromfile(DEMO_CONFIG)
    cfg.merge_from_dict({
        'work_dir': str(tmp_path), 'train_dataloader.dataset.data_root': str(demo_root),
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        'train_dataloader.batch_size': 16, 'train_cfg.max_epochs': 2,
        'custom_hooks.2.interval': 1, 'default_hooks.checkpoint.interval': 1,
        'experiment_name': 'knn_hook_demo'})
    Runner.from_cfg(cfg).train()
    json_log = glob.glob(str(tmp_path / '*' / 'vis_data' / '2*.json'))[0]
    curve = {r['step']: r['knn/top1'] for r in map(json.loads, open(json_log)) if 'knn/top1' in r}
    assert sorted(curve) == [1, 2]
    text = ''.join(open(p).read() for p in glob.glob(str(tmp_path / '*' / '*.log')))
    assert re.search(r'Epoch\(knn\) \[2\]  k-NN \(k=20, T=0.07, cls feature, 64 train / 16 val '
                     r'images\): top1: \d+\.\d\d', text)
    capsys.readouterr()
    knn_eval_tool().main([DEMO_CONFIG, str(tmp_path / 'epoch_2.pth'), '--data-root',
                          str(demo_root)])
    printed = float(re.search(r'top1: (\d+\.\d+)', capsys.readouterr().out).group(1))
    assert printed == pytest.approx(curve[2], abs=0.005)


def test_sharded_embedding_gathers_every_image_once_in_order(demo_root, monkeypatch):
    """Three ranks, 4 x 4 val images: the padded shards come back as one pass would give."""
    with DefaultScope.overwrite_default_scope('mmmim'):
        model = MODELS.build(Config.fromfile(DEMO_CONFIG).model).eval()
    hook = KNNEvalHook(data_root=str(demo_root), batch_size=5)
    items, _ = knn_hook.list_image_folder(str(demo_root), 'val')
    monkeypatch.setattr(knn_hook, 'collect_results', lambda rows, size, device: rows)
    monkeypatch.setattr(knn_hook, 'get_dist_info', lambda: (0, 1))
    ref, ref_labels = hook._embed(model, items)
    parts = []
    for rank in range(3):
        monkeypatch.setattr(knn_hook, 'get_dist_info', lambda rank=rank: (rank, 3))
        monkeypatch.setattr(knn_hook, 'collect_results',
                            lambda rows, size, device: parts.append(rows))
        assert hook._embed(model, items) == (None, None)
    assert [len(p) for p in parts] == [6, 6, 6]  # 16 images padded to 18
    # mmengine's collect_results: interleave the rank parts, drop the padding
    rows = [row for group in zip(*parts) for row in group][:len(items)]
    assert torch.equal(torch.tensor([label for _, label in rows]), ref_labels)
    assert torch.allclose(torch.stack([f for f, _ in rows]), ref, atol=1e-6)


def test_a_folder_without_val_is_refused_before_training(demo_root, tmp_path):
    (tmp_path / 'train').symlink_to(demo_root / 'train')
    runner = SimpleNamespace(cfg=Config(dict(train_dataloader=dict(dataset=dict(
        data_root=str(tmp_path))))), model=torch.nn.Module(), hooks=[])
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / 'val'))):
        KNNEvalHook().before_train(runner)
