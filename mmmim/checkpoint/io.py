"""Reading and writing checkpoint files: safe by default, atomic on write."""
import argparse
import io
import os
import os.path as osp
import pickle
import sys
import tempfile
import zipfile
from typing import Any, Dict

import torch
from mmengine.logging import print_log

URL_PREFIXES = ('http://', 'https://')
# Files at least this large show a progress bar while they are read.
PROGRESS_MIN_BYTES = 256 * 2**20
# Training checkpoints of the official repos carry their ``args``; a
# Namespace only holds attributes, so weights_only loading may rebuild it.
SAFE_GLOBALS = [argparse.Namespace]


class _ProgressFile(io.RawIOBase):
    """A read-only file that advances a progress bar (in MiB) as it is read."""

    def __init__(self, path: str):
        from mmengine.utils import ProgressBar
        self._file = open(path, 'rb')
        self._bar = ProgressBar(max(1, osp.getsize(path) >> 20), file=sys.stdout)
        self._done = 0
        self._reported = 0

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
        self._done += n or 0
        while (self._done >> 20) > self._reported and self._reported < self._bar.task_num:
            self._bar.update()
            self._reported += 1
        return n

    def close(self):
        if not self.closed and self._reported:
            self._bar.file.write('\n')
            self._bar.file.flush()
        self._file.close()
        super().close()


def _download(url: str) -> str:
    """Fetch ``url`` into torch's hub cache (with a progress bar) and return the path."""
    from urllib.error import URLError
    cache = osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(cache, exist_ok=True)
    dst = osp.join(cache, osp.basename(url.split('?')[0]))
    if not osp.isfile(dst):
        try:
            torch.hub.download_url_to_file(url, dst, progress=True)
        except (URLError, OSError) as e:
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


def write_checkpoint(obj: Dict[str, Any], dst: str, force: bool = False) -> None:
    """Write ``obj`` to ``dst`` atomically (temporary file, then rename).

    ``.safetensors`` files take the flat tensor dict ``obj['state_dict']``
    (or ``obj`` itself). An existing ``dst`` is replaced only with ``force``.
    """
    if osp.exists(dst) and not force:
        raise FileExistsError(f'{dst} exists; pass --force (force=True) to overwrite it')
    out_dir = osp.dirname(osp.abspath(dst))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(dst) + '.', dir=out_dir)
    os.close(fd)
    try:
        if dst.endswith('.safetensors'):
            from safetensors.torch import save_file
            tensors = obj.get('state_dict', obj)
            save_file({k: v.contiguous() for k, v in tensors.items()}, tmp)
        else:
            torch.save(obj, tmp)
        os.replace(tmp, dst)
    except BaseException:
        os.unlink(tmp)
        raise
