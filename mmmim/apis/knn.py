"""Weighted k-NN evaluation of frozen features (Wu et al., 2018; as used in DINO)."""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F


@torch.no_grad()
def knn_classify(train_feats: torch.Tensor, train_labels: torch.Tensor,
                 test_feats: torch.Tensor, num_classes: int, k: int = 20,
                 temperature: float = 0.07, chunk: int = 256) -> torch.Tensor:
    """Class scores ``[M, num_classes]`` of test features by weighted k-NN.

    Features are L2-normalised; each of the ``k`` most cosine-similar
    training samples votes for its label with weight ``exp(sim / T)``.

    Args:
        train_feats: ``[N, C]`` training features.
        train_labels: ``[N]`` integer labels.
        test_feats: ``[M, C]`` features to classify.
        num_classes: Number of classes.
        k: Neighbours (capped at N).
        temperature: ``T`` of the vote weights.
        chunk: Test rows per similarity block (memory bound).
    """
    train = F.normalize(train_feats.float(), dim=1)
    test = F.normalize(test_feats.float(), dim=1)
    k = min(k, train.shape[0])
    scores = []
    for start in range(0, test.shape[0], chunk):
        sim = test[start:start + chunk] @ train.T  # [m, N]
        top_sim, top_idx = sim.topk(k, dim=1)  # [m, k]
        votes = torch.zeros(top_sim.shape[0], num_classes, device=sim.device)
        votes.scatter_add_(1, train_labels[top_idx], (top_sim / temperature).exp())
        scores.append(votes)
    return torch.cat(scores)


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor,
                  topk: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Top-k accuracies in percent."""
    out = {}
    for k in topk:
        k = min(k, scores.shape[1])
        hit = (scores.topk(k, dim=1).indices == labels[:, None]).any(dim=1)
        out[f'top{k}'] = 100.0 * hit.float().mean().item()
    return out
