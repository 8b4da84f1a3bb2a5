"""Files that are whole or absent, JSON that is valid, and one process per run folder.

* :func:`write_atomic`: every file a task writes (results JSONs, ``stats.json``, word vectors,
  plots) goes to a temporary file in the same folder, is flushed to disk and then renamed over
  the target (``os.replace``, atomic on POSIX): a process killed while writing leaves the old
  file (or none), never a truncated one. Checkpoints get the same from orbax's own commit (a
  ``<step>.orbax-checkpoint-tmp-*`` folder renamed when complete).
* :func:`json_text`: ``json.dumps`` that never writes ``NaN`` / ``Infinity`` (which are not JSON):
  a non-finite float becomes ``null``.
* :func:`locked`: a run folder is held by one process at a time through ``fcntl.flock`` on
  ``FOLDER/.seqjax.lock``. The kernel releases the lock when the process ends, however it ends
  (``kill -9`` included), so a crashed run never blocks its own ``--resume``; the file keeps the
  last holder's pid only to name it in the refusal.

Standard library only: every layer may import it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from seqjax import SeqjaxError

LOCK_NAME = ".seqjax.lock"


def write_atomic(path: str | os.PathLike, data: str | bytes | Callable, encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` all at once: a ``str`` (``encoding``), ``bytes``, or a function
    ``write(file_object)`` given a binary file (for large outputs written piece by piece). The
    folder is created. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data.encode(encoding) if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def finite_or_null(obj):
    """``obj`` (dicts, lists, tuples, numbers) with every non-finite float replaced by ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def json_text(obj, **kwargs) -> str:
    """``json.dumps(obj, **kwargs)`` that is always valid JSON: numpy scalars as numbers
    (``default=float``), NaN and infinities as ``null``."""
    kwargs.setdefault("default", float)
    try:
        return json.dumps(obj, allow_nan=False, **kwargs)
    except ValueError:  # a non-finite float somewhere (numpy ones reach here through ``default``)
        return json.dumps(finite_or_null(json.loads(json.dumps(obj, **kwargs))), allow_nan=False, **kwargs)


def write_json(path: str | os.PathLike, obj, indent: int | None = 1) -> Path:
    """``obj`` as valid JSON (:func:`json_text`) in ``path``, atomically (:func:`write_atomic`)."""
    return write_atomic(path, json_text(obj, indent=indent) + "\n")


@contextlib.contextmanager
def locked(folder: str | os.PathLike, flag: str = "--out") -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for this process while the ``with`` block runs.

    Raises:
      SeqjaxError: another live process holds it (one line naming the folder, ``flag`` and the
        other process's pid).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield Path(folder)
        return
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
            raise SeqjaxError(f"{flag} {folder}: another process (pid {holder}) is using this run folder; wait "
                              f"for it to end or choose another {flag}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.close(fd)  # releases the lock
