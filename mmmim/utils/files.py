"""Reading annotation files with errors that name them; writing output files so that a
failure or a second run loses nothing."""
import json
import os
import os.path as osp
import tempfile
from typing import Any, Callable


def atomic_write(path: str, write: Callable[[str], None], force: bool = False) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it to ``path``.

    A failed write leaves no partial file; an existing ``path`` is replaced
    only with ``force``. The temporary file keeps ``path``'s extension, for
    writers that choose the format by it.
    """
    if osp.exists(path) and not force:
        raise FileExistsError(f'{path} exists; pass --force to overwrite it')
    out_dir = osp.dirname(osp.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(path) + '.', suffix=osp.splitext(path)[1],
                               dir=out_dir)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def load_json(path: str, what: str) -> Any:
    """The JSON in ``path``; a missing file or invalid JSON is an error naming ``what`` and the file."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} {path} does not exist')
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f'{path}: not valid JSON: {e}') from e
