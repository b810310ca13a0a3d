import sys

import torch

from mmmim.apis import knn_classify, topk_accuracy

from ..conftest import DEMO_CONFIG, run_tool


def clusters(n_train, n_test, num_classes=10, dim=16, spread=0.1):
    """Train and test samples around the same well-separated class centres."""
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(num_classes, dim, generator=g) * 3
    out = []
    for n in (n_train, n_test):
        labels = torch.arange(num_classes).repeat_interleave(n)
        out += [centres[labels] + spread * torch.randn(len(labels), dim, generator=g), labels]
    return out


def test_separable_features_are_classified_perfectly():
    train, train_y, test, test_y = clusters(50, 20)
    scores = knn_classify(train, train_y, test, 10, k=20, temperature=0.07)
    assert topk_accuracy(scores, test_y)['top1'] == 100.0


def test_shuffled_labels_give_about_chance():
    train, train_y, test, test_y = clusters(200, 100)
    shuffled = train_y[torch.randperm(len(train_y), generator=torch.Generator().manual_seed(2))]
    acc = topk_accuracy(knn_classify(train, shuffled, test, 10), test_y)['top1']
    assert 3.0 < acc < 20.0  # chance is 10%


def test_vote_weights_follow_the_formula():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    test = torch.tensor([[1.0, 0.2]])
    scores = knn_classify(train, labels, test, 2, k=3, temperature=0.5)
    sims = torch.nn.functional.normalize(test, dim=1) @ torch.nn.functional.normalize(train, dim=1).T
    w = (sims[0] / 0.5).exp()
    assert torch.allclose(scores[0], torch.stack([w[0], w[1] + w[2]]))


def test_knn_tool_on_demo_data(demo_root):
    proc = run_tool([sys.executable, 'tools/analysis_tools/knn_eval.py', DEMO_CONFIG,
                     '--data-root', str(demo_root)])
    assert 'top1:' in proc.stdout and '4 classes' in proc.stdout
