"""Pre-tokenised images: the token file that tools/misc/tokenize_images.py writes, and RAR's
official ``pretokenized.jsonl``."""
import json
import os.path as osp
import zipfile
from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from mmmim.registry import DATASETS
from mmmim.utils import atomic_write

TOKEN_FILE_KEYS = ('tokens', 'labels', 'classes')


def write_token_file(path: str, tokens: np.ndarray, labels: np.ndarray, classes: Sequence[str],
                     meta: Optional[Dict[str, str]] = None, force: bool = False) -> None:
    """Write ``tokens`` ``[N, h, w]``, ``labels`` ``[N]`` and the class names to an ``.npz``,
    atomically; an existing file is replaced only with ``force``."""
    if not path.endswith('.npz'):
        raise ValueError(f'token files are .npz files, got {path}')
    dtype = np.uint16 if tokens.max(initial=0) < 2**16 else np.int32
    atomic_write(path, lambda tmp: np.savez(
        tmp, tokens=tokens.astype(dtype), labels=labels.astype(np.int64),
        classes=np.array(list(classes), dtype=str), meta=np.array(json.dumps(meta or {}))), force)


def _read_npz(path: str):
    try:
        f = np.load(path, allow_pickle=False)
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f'{path} is not a readable .npz token file: {e}') from None
    if not isinstance(f, np.lib.npyio.NpzFile):
        raise ValueError(f'{path} is a single array, not a .npz token file')
    with f:
        missing = [k for k in TOKEN_FILE_KEYS if k not in f.files]
        if missing:
            raise ValueError(f'{path} is not a token file: no {", ".join(missing)} (it has '
                             f'{", ".join(f.files) or "nothing"}); write one with '
                             'tools/misc/tokenize_images.py')
        return f['tokens'], f['labels'], [str(c) for c in f['classes']]


def _read_jsonl(path: str):
    tokens, labels = [], []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                tokens.append(rec['tokens'])
                labels.append(int(rec['class_id']))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ValueError(f'{path} line {n} is not a {{"class_id", "tokens"}} record '
                                 f'({type(e).__name__}: {e})') from None
    if not tokens:
        raise ValueError(f'{path} holds no token records')
    lengths = {len(t) for t in tokens}
    if len(lengths) != 1:
        raise ValueError(f'{path}: records have different token counts {sorted(lengths)[:5]}')
    labels = np.asarray(labels, np.int64)
    return np.asarray(tokens, np.int64), labels, [str(i) for i in range(labels.max() + 1)]


@DATASETS.register_module()
class TokenDataset(Dataset):
    """Token ids of images and their class labels, read once into memory.

    Each sample is ``dict(inputs=LongTensor [L], data_samples=dict(gt_label=LongTensor []))``
    (raster order, ``L = h * w``).

    Args:
        ann_file: A ``.npz`` token file (``tokens``, ``labels``, ``classes``) or
            an official ``.jsonl`` (``{"class_id": c, "tokens": [...]}`` a line).
        image_seq_len: Expected tokens per image; checked if given.
        codebook_size: Token ids must lie in ``[0, codebook_size)``; checked if given.
        num_classes: Labels must lie in ``[0, num_classes)``; checked if given.
        data_root: Prefix of a relative ``ann_file``.
    """

    def __init__(self, ann_file: str, image_seq_len: Optional[int] = None,
                 codebook_size: Optional[int] = None, num_classes: Optional[int] = None,
                 data_root: str = '', **kwargs):
        if kwargs.pop('pipeline', None):
            raise KeyError('TokenDataset takes no pipeline (the tokens are final)')
        if kwargs:
            raise KeyError(f'TokenDataset got unknown options {sorted(kwargs)}')
        path = osp.join(data_root, ann_file) if data_root and not osp.isabs(ann_file) else ann_file
        if not osp.isfile(path):
            raise FileNotFoundError(f'token file not found: {path} (make it with '
                                    'tools/misc/tokenize_images.py)')
        tokens, labels, classes = _read_jsonl(path) if path.endswith('.jsonl') else _read_npz(path)
        tokens = tokens.reshape(tokens.shape[0], -1)
        if labels.shape != (tokens.shape[0], ):
            raise ValueError(f'{path}: {tokens.shape[0]} token rows but labels of shape '
                             f'{labels.shape}')
        if image_seq_len is not None and tokens.shape[1] != image_seq_len:
            raise ValueError(f'{path} has {tokens.shape[1]} tokens per image, the model expects '
                             f'{image_seq_len} (image_seq_len)')
        if codebook_size is not None and tokens.size and (tokens.min() < 0 or
                                                          tokens.max() >= codebook_size):
            raise ValueError(f'{path} has token ids {tokens.min()} .. {tokens.max()} outside '
                             f'[0, {codebook_size}) (codebook_size): another tokenizer?')
        if num_classes is not None and labels.size and (labels.min() < 0 or
                                                        labels.max() >= num_classes):
            raise ValueError(f'{path} has labels {labels.min()} .. {labels.max()} outside '
                             f'[0, {num_classes}) (num_classes)')
        self.ann_file = path
        self.tokens = torch.from_numpy(tokens.astype(np.int64))
        self.labels = torch.from_numpy(labels)
        self.metainfo = dict(classes=tuple(classes))

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def __getitem__(self, idx: int) -> dict:
        return dict(inputs=self.tokens[idx], data_samples=dict(gt_label=self.labels[idx]))
