"""The demo's classifier measures against mmpretrain's own prediction path."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmmim.evaluation import classifier_scores

from ..conftest import REPO

CLS = osp.join(REPO, 'configs/benchmarks/classification/vit-demo-p8_mae-pre_1xb32-coslr-10e_demo-ft.py')


def test_classifier_scores_agree_with_predict():
    from mmmim.apis import init_model
    torch.manual_seed(0)
    model = init_model(CLS)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 64, 64, 3), dtype=np.uint8)
    labels = np.arange(12) % 4
    out = classifier_scores(model, images, labels, images, labels, ['a', 'b', 'c', 'd'])
    with torch.no_grad():
        data = model.data_preprocessor(
            dict(inputs=list(torch.from_numpy(images).permute(0, 3, 1, 2))), False)
        pred = torch.cat([s.pred_label for s in model(data['inputs'], mode='predict')])
    expected = (pred.numpy() == labels).mean()
    assert out['acc_generated'] == pytest.approx(expected) and out['acc_real'] == pytest.approx(expected)
    assert out['fd_classifier'] == pytest.approx(0.0, abs=1e-4)
    per_class = [(pred.numpy()[labels == c] == c).mean() for c in range(4)]
    assert [out[f'acc_generated/{n}'] for n in 'abcd'] == pytest.approx(per_class)
    assert out['chance'] == 0.25
