"""The cache directory: downloaded datasets, trained feature extractors, anything worth keeping
between runs. Files are written atomically (a temporary file, then a rename), so a crash or a
full disk never leaves a half-written file under its final name, and a cached file that fails to
load is treated as missing and rebuilt.

Location: the ``root`` a suite gives, else ``$BENCHBENCH_CACHE``, else ``~/.cache/benchbench``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

CACHE_ENV = "BENCHBENCH_CACHE"


def cache_dir(*parts: str, root: str | Path | None = None) -> Path:
    """The directory ``<cache root>/<parts...>``, created if missing."""
    base = Path(root) if root else Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "benchbench")
    path = base.expanduser().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def exclusive(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` while building what ``path`` caches: processes that build the
    same file at once (the workers of one run, a first time) wait for the first instead of repeating its work,
    then load what it wrote. An advisory ``flock``, dropped by the kernel if the holder dies; without ``fcntl``
    (Windows) nothing is locked."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock = Path(f"{path}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either absent, the old file, or complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # the permissions open() would give, not mkstemp's 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:  # e.g. a full disk during write(): name the file
            exc.filename = str(path)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_tensors(path: Path, obj: Any) -> None:
    """``torch.save`` ``obj`` (tensors, numbers, strings, lists, dicts) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_tensors(path: Path) -> Any | None:
    """What :func:`save_tensors` wrote, loaded with ``weights_only=True`` (no code runs), or None
    when the file is missing or corrupt (a corrupt file is removed so that it gets rebuilt)."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - any unreadable cache file is rebuilt, never trusted
        path.unlink(missing_ok=True)
        return None
