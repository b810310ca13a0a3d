"""Reading and writing checkpoint files: safe by default, atomic on write."""
import argparse
import io
import os
import os.path as osp
import pickle
import tempfile
import zipfile
from typing import Any, Dict, Tuple

import torch
from mmengine.logging import print_log

from mmmim.utils import Progress, atomic_write

URL_PREFIXES = ('http://', 'https://')
# Files at least this large report their reading progress.
PROGRESS_MIN_BYTES = 256 * 2**20
# Training checkpoints of the official repos carry their ``args``; a
# Namespace only holds attributes, so weights_only loading may rebuild it.
SAFE_GLOBALS = [argparse.Namespace]


class _ProgressFile(io.RawIOBase):
    """A read-only file that reports the MiB read to a :class:`Progress`."""

    def __init__(self, path: str):
        self._file = open(path, 'rb')
        self._progress = Progress(_mib(osp.getsize(path)), f'reading {path}', 'MiB')
        self._read = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=io.SEEK_SET):
        return self._file.seek(offset, whence)

    def tell(self):
        return self._file.tell()

    def readinto(self, buffer):
        n = self._file.readinto(buffer)
        self._read += n or 0
        _advance(self._progress, self._read)
        return n

    def close(self):
        if not self.closed:
            self._progress.close()
            self._file.close()
        super().close()


def _mib(nbytes: int) -> int:
    return -(-nbytes >> 20)  # rounded up


def _advance(progress: Progress, nbytes: int) -> None:
    """Bring ``progress`` (in MiB, capped at its total) to ``nbytes`` done."""
    mib = _mib(nbytes) if progress.total is None else min(progress.total, _mib(nbytes))
    progress.update(mib - progress.done)


def _download(url: str) -> str:
    """Fetch ``url`` into torch's hub cache (once) and return the path."""
    from http.client import HTTPException
    from urllib.error import URLError
    from urllib.request import urlopen
    cache = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(cache, exist_ok=True)
    dst = osp.join(cache, osp.basename(url.split('?')[0]))
    if not osp.isfile(dst):
        fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(dst) + '.', dir=cache)
        try:
            with os.fdopen(fd, 'wb') as f, urlopen(url, timeout=60) as response:
                size = response.headers.get('Content-Length')
                with Progress(size and _mib(int(size)), f'downloading {url}', 'MiB') as progress:
                    while chunk := response.read(1 << 20):
                        f.write(chunk)
                        _advance(progress, f.tell())
            os.replace(tmp, dst)
        except (URLError, OSError, HTTPException) as e:
            os.unlink(tmp)
            raise ConnectionError(f'cannot download {url} ({e}); download it on a machine with '
                                  'network access and pass the local file instead') from None
    return dst


def torch_load(path: str, allow_pickle: bool = False, map_location='cpu'):
    """``torch.load`` with weights_only unless ``allow_pickle``, and errors naming ``path``."""
    if allow_pickle:
        print_log(f'loading {path} with full unpickling: only do this for files you trust',
                  logger='current', level=30)
    big = osp.getsize(path) >= PROGRESS_MIN_BYTES
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS), \
                (_ProgressFile(path) if big else open(path, 'rb')) as f:
            ckpt = torch.load(f, map_location=map_location, weights_only=not allow_pickle)
    except pickle.UnpicklingError as e:
        raise ValueError(f'{path} holds objects beyond tensors and containers, refused by '
                         f'weights_only loading ({str(e).splitlines()[-1][:300]}). If you trust '
                         'the file, allow full unpickling (--allow-pickle / allow_pickle=True)') \
            from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        raise ValueError(f'{path} is not a readable PyTorch checkpoint (truncated or another '
                         f'format): {str(e).splitlines()[0][:300]}') from None
    return ckpt


def read_checkpoint(src: str, allow_pickle: bool = False, map_location='cpu') -> Dict[str, Any]:
    """Read a ``.pth`` / ``.pt`` / ``.safetensors`` file or URL into a dict.

    ``torch.load`` runs with ``weights_only=True`` unless ``allow_pickle``
    (full unpickling, which can run code from the file) is asked for.
    """
    path = _download(src) if src.startswith(URL_PREFIXES) else src
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {src}')
    if path.endswith('.safetensors'):
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return dict(load_file(path, device=str(map_location)))
        except (SafetensorError, OSError) as e:
            raise ValueError(f'{src} is not a readable safetensors file: {e}') from None
    ckpt = torch_load(path, allow_pickle, map_location)
    if not isinstance(ckpt, dict):
        raise ValueError(f'{src} holds a {type(ckpt).__name__}, not a dict of weights')
    return ckpt


def _flat_tensors(obj: Dict[str, Any], dst: str) -> Tuple[Dict[str, torch.Tensor], Dict]:
    """The tensors of ``obj`` (itself, or under ``state_dict`` / ``model``) and its ``meta``."""
    meta = {}
    for key in ('state_dict', 'model'):
        if isinstance(obj.get(key), dict):
            obj, meta = obj[key], obj.get('meta') or {}
            break
    others = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    if others:
        raise TypeError(f'{dst}: a .safetensors file holds tensors only, not '
                        f'{", ".join(others[:5])}; write a .pth file instead')
    return {k: v.contiguous() for k, v in obj.items()}, {k: str(v) for k, v in meta.items()}


def write_checkpoint(obj: Dict[str, Any], dst: str, force: bool = False) -> None:
    """Write ``obj`` to ``dst`` atomically (temporary file, then rename).

    A ``.safetensors`` file gets the flat tensor dict: ``obj`` itself or its
    ``state_dict`` / ``model`` entry, with ``obj['meta']`` as string metadata.
    An existing ``dst`` is replaced only with ``force``.
    """
    def write(tmp):
        if dst.endswith('.safetensors'):
            from safetensors.torch import save_file
            tensors, meta = _flat_tensors(obj, dst)
            save_file(tensors, tmp, metadata=meta or None)
        else:
            torch.save(obj, tmp)
    atomic_write(dst, write, force)
