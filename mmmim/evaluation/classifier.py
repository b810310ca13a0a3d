"""How well generated images pass for their class: a classifier's accuracy on them, and the
Frechet distance in its feature space to real images (the RAR demo's measures)."""
from typing import Dict, Sequence

import numpy as np
import torch

from .fid import frechet_distance, statistics


@torch.no_grad()
def classify(model, images: np.ndarray, batch_size: int = 64):
    """Predicted labels ``[N]`` and pre-logit features ``[N, D]`` of uint8 RGB images
    ``[N, H, W, 3]`` under an mmpretrain ``ImageClassifier`` (its data preprocessor included)."""
    model.eval()
    labels, feats = [], []
    for i in range(0, len(images), batch_size):
        x = torch.from_numpy(images[i:i + batch_size]).permute(0, 3, 1, 2).contiguous()
        data = model.data_preprocessor(dict(inputs=list(x)), False)
        stages = model.extract_feat(data['inputs'])
        feat = model.head.pre_logits(stages)  # [B, D]
        logits = model.head(stages)  # [B, classes]
        labels.append(logits.argmax(-1).cpu())
        feats.append(feat.double().cpu())
    return torch.cat(labels), torch.cat(feats)


def classifier_scores(model, generated: np.ndarray, generated_labels: Sequence[int],
                      real: np.ndarray, real_labels: Sequence[int],
                      class_names: Sequence[str] = ()) -> Dict[str, float]:
    """Accuracy per class and overall on generated and real images, and the Frechet distance
    between the classifier features of the generated and the real images."""
    gl, rl = torch.as_tensor(np.asarray(generated_labels)), torch.as_tensor(np.asarray(real_labels))
    g_pred, g_feat = classify(model, generated)
    r_pred, r_feat = classify(model, real)
    out = dict(acc_generated=(g_pred == gl).float().mean().item(),
               acc_real=(r_pred == rl).float().mean().item())
    for c in sorted(set(gl.tolist())):
        name = class_names[c] if c < len(class_names) else str(c)
        out[f'acc_generated/{name}'] = (g_pred[gl == c] == c).float().mean().item()
    out['fd_classifier'] = frechet_distance(statistics(g_feat), statistics(r_feat))
    out['chance'] = 1.0 / max(1, len(set(rl.tolist()) | set(gl.tolist())))
    return out
