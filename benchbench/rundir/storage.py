"""What the file system of a run directory can do wrong, said in one line naming the path.

A full disk, a read-only file system, a file where a directory belongs (``--out /dev/null``,
``--out FILE/sub``, a file named ``cells``) or a directory where a file belongs (``records.csv/``)
is a :class:`StorageError`: exit code 2 before training starts, 1 once the run has started (the
cells finished by then are saved, and the run resumes from them).
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Iterator
from pathlib import Path

from ..api.errors import BenchbenchError

FILES = ("suite.yaml", "environment.json", "records.csv", "curves.csv", "summary.csv")  # written by every run
CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EFBIG: "file too large (a file-size limit such as ulimit -f)",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a file stands where a directory belongs",
    errno.EISDIR: "a directory stands where a file belongs",
    errno.ENAMETOOLONG: "file name too long",
    errno.EEXIST: "a file stands where a directory belongs",
}


class StorageError(BenchbenchError):
    """The run directory could not be read or written; ``exit_code`` 1 when it stopped a run."""

    def __init__(self, path: str | Path, cause: str, exit_code: int = 2):
        self.path, self.cause, self.exit_code = str(path), cause, exit_code
        super().__init__(f"{path}: {cause}")

    def __reduce__(self):
        return type(self), (self.path, self.cause, self.exit_code)


def cause(exc: OSError) -> str:
    return CAUSES.get(exc.errno) or (exc.strerror or str(exc)).lower()


@contextlib.contextmanager
def storage_errors(where: str | Path, exit_code: int = 2, hint: str = "") -> Iterator[None]:
    """Turn an :class:`OSError` into a :class:`StorageError` naming its file (else ``where``)."""
    try:
        yield
    except OSError as exc:
        message = cause(exc) + (f"; {hint}" if hint else "")
        raise StorageError(exc.filename or where, message, exit_code) from None


def check_layout(path: Path) -> None:
    """Refuse a run directory that cannot hold a run, before anything is written to it."""
    for parent in reversed(path.parents):
        if parent.exists() and not parent.is_dir():
            raise StorageError(parent, "is a file, not a directory: it cannot hold the run directory "
                                       f"{path.name!r}; choose another --out")
    if path.exists() and not path.is_dir():
        raise StorageError(path, "is not a directory; give --out a directory (new or holding a run)")
    for name in FILES:
        if (path / name).is_dir():
            raise StorageError(path / name, "is a directory where the run writes a file; remove it or choose "
                                            "another --out")
    cells = path / "cells"
    if cells.exists() and not cells.is_dir():
        raise StorageError(cells, "is a file where the run keeps its cells (a directory); remove it or choose "
                                  "another --out")
