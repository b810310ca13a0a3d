"""FID, Inception Score and precision / recall of generated images, through torch-fidelity.

The Inception network is torch-fidelity's ``inception-v3-compat`` (the
TF-FID graph ported to PyTorch) with weights from a file the user names
(torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``); nothing
downloads. The file is first read with ``weights_only=True`` so that only a
plain tensor file ever reaches torch-fidelity's own loader.

Reference statistics come from an ADM-style ``.npz`` (``mu`` / ``sigma``,
as ``VIRTUAL_imagenet256_labeled.npz``; its ``arr_0`` images, where
present, serve IS-free precision / recall) or from an image folder.

    python -m mmmim.evaluation.fid SAMPLES.npz REF.npz|REF_DIR --inception FILE [--batch-size 50]
"""
import argparse
import os
import os.path as osp
import zipfile
from typing import Dict, Iterable, Optional, Tuple

import numpy as np
import torch

# Features: '2048' the pool features of FID / precision-recall, 'logits_unbiased' those of IS.
FEATURES = ('2048', 'logits_unbiased')
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.webp', '.JPEG')


def build_inception(weights: str, device='cpu'):
    """torch-fidelity's Inception v3 feature extractor with the weights in ``weights``."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    from mmmim.checkpoint import read_checkpoint
    if not weights:
        raise ValueError('name the Inception weights file (torch-fidelity\'s '
                         'weights-inception-2015-12-05-6726825d.pth): nothing is downloaded')
    sd = read_checkpoint(weights)  # weights_only: a plain tensor file or an error naming it
    if 'Mixed_7c.branch_pool.conv.weight' not in sd or 'fc.weight' not in sd:
        raise KeyError(f'{weights} is not a torch-fidelity Inception v3 state dict (no '
                       'Mixed_7c.* / fc.* keys)')
    # torch-fidelity reads the file with weights_only=False; force weights-only for that call
    previous = os.environ.get('TORCH_FORCE_WEIGHTS_ONLY_LOAD')
    os.environ['TORCH_FORCE_WEIGHTS_ONLY_LOAD'] = '1'
    try:
        extractor = FeatureExtractorInceptionV3('inception-v3-compat', list(FEATURES),
                                                feature_extractor_weights_path=weights)
    finally:
        if previous is None:
            del os.environ['TORCH_FORCE_WEIGHTS_ONLY_LOAD']
        else:
            os.environ['TORCH_FORCE_WEIGHTS_ONLY_LOAD'] = previous
    return extractor.to(device)


@torch.no_grad()
def extract_features(extractor, images: Iterable[np.ndarray], batch_size: int = 50,
                     device='cpu') -> Dict[str, torch.Tensor]:
    """Features ``{'2048': [N, 2048], 'logits_unbiased': [N, 1008]}`` of uint8 RGB images
    ``[H, W, 3]`` (any size: the extractor resizes to 299 as TF-FID does)."""
    out = {k: [] for k in FEATURES}
    batch = []

    def flush():
        x = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2).contiguous().to(device)
        for k, f in zip(FEATURES, extractor(x)):
            out[k].append(f.double().cpu())
        batch.clear()

    for img in images:
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f'images must be uint8 [H, W, 3], got {img.dtype} {img.shape}')
        batch.append(img)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not out['2048']:
        raise ValueError('no images to extract features from')
    return {k: torch.cat(v) for k, v in out.items()}


def statistics(features: torch.Tensor) -> Dict[str, np.ndarray]:
    """``mu`` ``[D]`` and ``sigma`` ``[D, D]`` of features ``[N, D]`` (float64)."""
    from torch_fidelity.metric_fid import fid_features_to_statistics
    if features.shape[0] < 2:
        raise ValueError(f'statistics need at least 2 samples, got {features.shape[0]}')
    return fid_features_to_statistics(features.double().cpu())


def frechet_distance(stats1: Dict[str, np.ndarray], stats2: Dict[str, np.ndarray]) -> float:
    """``|mu1 - mu2|^2 + tr(s1 + s2 - 2 (s1 s2)^(1/2))`` (torch-fidelity's formula)."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric
    s1 = {k: np.asarray(stats1[k], np.float64) for k in ('mu', 'sigma')}
    s2 = {k: np.asarray(stats2[k], np.float64) for k in ('mu', 'sigma')}
    if s1['mu'].shape != s2['mu'].shape:
        raise ValueError(f'feature widths differ: {s1["mu"].shape} vs {s2["mu"].shape}')
    return fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID]


def inception_score(logits: torch.Tensor, splits: int = 10) -> Tuple[float, float]:
    """Mean and std of the Inception Score over ``splits`` (torch-fidelity's)."""
    from torch_fidelity.metric_isc import (KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD,
                                           isc_features_to_metric)
    out = isc_features_to_metric(logits, splits=min(splits, logits.shape[0]))
    return out[KEY_METRIC_ISC_MEAN], out[KEY_METRIC_ISC_STD]


def precision_recall(generated: torch.Tensor, real: torch.Tensor, k: int = 3) -> Tuple[float, float]:
    """Improved precision / recall (Kynkaanniemi et al.) with ``k`` neighbours (torch-fidelity's)."""
    from torch_fidelity.metric_prc import (KEY_METRIC_PRECISION, KEY_METRIC_RECALL,
                                           prc_features_to_metric)
    out = prc_features_to_metric(generated.float(), real.float(), prc_neighborhood=k,
                                 prc_batch_size=10000, save_cpu_ram=False, verbose=False)
    return out[KEY_METRIC_PRECISION], out[KEY_METRIC_RECALL]


def read_images_npz(path: str, key: str = 'arr_0') -> np.ndarray:
    """The uint8 ``[N, H, W, 3]`` images of an ADM-style ``.npz``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'sample file not found: {path}')
    try:
        with np.load(path, allow_pickle=False) as f:
            if key not in f.files:
                raise KeyError(f'{path} has no {key} (it has {", ".join(f.files)})')
            arr = f[key]
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f'{path} is not a readable .npz file: {e}') from None
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f'{path}: {key} must be uint8 [N, H, W, 3], got {arr.dtype} {arr.shape}')
    return arr


def iter_image_folder(root: str):
    """uint8 RGB arrays of every image under ``root`` (recursively, sorted)."""
    from PIL import Image
    paths = sorted(osp.join(d, f) for d, _, files in os.walk(root) for f in files
                   if f.endswith(IMAGE_EXTS))
    if not paths:
        raise ValueError(f'{root} holds no images ({", ".join(IMAGE_EXTS)})')
    for p in paths:
        with Image.open(p) as img:
            yield np.asarray(img.convert('RGB'))


def reference(ref: str, extractor=None, batch_size: int = 50, device='cpu') -> Dict:
    """Reference ``{'mu', 'sigma'}`` and, where images are available, ``features``.

    ``ref`` is an ADM-style ``.npz`` (its ``mu`` / ``sigma``; features of its
    ``arr_0`` images when ``extractor`` is given and it has them) or an image folder.
    """
    if osp.isdir(ref):
        if extractor is None:
            raise ValueError('an image-folder reference needs the Inception weights')
        feats = extract_features(extractor, iter_image_folder(ref), batch_size, device)
        return dict(statistics(feats['2048']), features=feats)
    if not osp.isfile(ref):
        raise FileNotFoundError(f'reference not found: {ref} (an ADM-style .npz or an image '
                                'folder)')
    try:
        with np.load(ref, allow_pickle=False) as f:
            files = set(f.files)
            out = {k: f[k] for k in ('mu', 'sigma') if k in files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f'{ref} is not a readable .npz file: {e}') from None
    if extractor is not None and 'arr_0' in files:
        feats = extract_features(extractor, read_images_npz(ref), batch_size, device)
        out['features'] = feats
        if 'mu' not in out:
            out.update(statistics(feats['2048']))
    if 'mu' not in out or 'sigma' not in out:
        raise KeyError(f'{ref} has neither mu / sigma nor arr_0 images (keys: {sorted(files)})')
    return out


def evaluate(images: Iterable[np.ndarray], ref: Dict, extractor, batch_size: int = 50,
             device='cpu') -> Dict[str, float]:
    """FID, IS and (with reference features) precision / recall of uint8 images."""
    feats = extract_features(extractor, images, batch_size, device)
    out = dict(fid=frechet_distance(statistics(feats['2048']), ref))
    out['inception_score'], out['inception_score_std'] = inception_score(feats['logits_unbiased'])
    if 'features' in ref:
        out['precision'], out['recall'] = precision_recall(feats['2048'], ref['features']['2048'])
    return out


def main(argv: Optional[list] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description='FID / IS / precision-recall of a sample .npz')
    parser.add_argument('samples', help='ADM-style .npz of generated images (arr_0)')
    parser.add_argument('ref', help='ADM-style reference .npz or an image folder')
    parser.add_argument('--inception', required=True, help='Inception v3 weights file')
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args(argv)
    samples = read_images_npz(args.samples)
    extractor = build_inception(args.inception, args.device)
    ref = reference(args.ref, extractor, args.batch_size, args.device)
    scores = evaluate(samples, ref, extractor, args.batch_size, args.device)
    print('  '.join(f'{k}: {v:.4f}' for k, v in scores.items()))
    return scores


if __name__ == '__main__':
    main()
