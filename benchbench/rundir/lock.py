"""One run at a time in a run directory: ``<run>/run.lock``, holding the pid and host of its run.

The lock is an advisory ``flock`` on that file, which the kernel drops when the process ends,
however it ends (a ``kill -9`` too). A second run on a directory in use is refused with one line
naming the other run's pid; a lock file left by a run that died is taken over, with a warning.
:func:`released_on_return` releases every lock taken during a call (normal return, error or
Ctrl-C); a lock taken outside such a call is released when the process exits.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import datetime as dt
import functools
import json
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; the pid in the file is checked instead
    fcntl = None

from ..api.errors import ConfigError

LOCK_FILE = "run.lock"
_held: contextvars.ContextVar[list | None] = contextvars.ContextVar("benchbench_locks", default=None)


class RunLock:
    """The lock of one run directory, held by this process until :meth:`release`."""

    def __init__(self, path: Path, fd: int):
        self.path, self.fd = path, fd

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()  # while still holding it: a waiting run then finds no file, or its own
        os.close(self.fd)
        self.fd = None


def acquire(directory: Path) -> tuple[RunLock, str | None]:
    """Lock ``directory`` (which must exist) for this process: (the lock, a warning when it took
    over the lock of a run that died, else None). Raises :class:`ConfigError` when in use."""
    path = Path(directory) / LOCK_FILE
    for _ in range(10):  # retried when the file was replaced between opening and locking it
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            previous = _read(fd)
            if not _try_lock(fd, previous):
                raise ConfigError(str(directory), f"in use by another run ({_describe(previous)}); wait for it to "
                                                  f"finish or choose another --out")
            if not _same_file(fd, path):
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_me()).encode(), 0)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        lock = RunLock(path, fd)
        held = _held.get()
        if held is not None:
            held.append(lock)
        else:
            atexit.register(lock.release)
        took_over = previous and previous.get("pid") not in (None, os.getpid())
        warning = f"{path}: took over the lock of a run that is no longer running ({_describe(previous)})" \
            if took_over else None
        return lock, warning
    raise ConfigError(str(directory), "its lock file keeps changing: another run is starting there; try again")


def released_on_return(function):
    """Decorator: every lock :func:`acquire` takes during a call of ``function`` is released when it returns."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        token = _held.set([])
        try:
            return function(*args, **kwargs)
        finally:
            for lock in reversed(_held.get()):
                lock.release()
            _held.reset(token)
    return wrapper


def _try_lock(fd: int, previous: dict) -> bool:
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True
    return not previous or not _alive(previous)  # pragma: no cover - without flock


def _alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
        return True  # cannot tell: assume in use
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _read(fd: int) -> dict:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def _me() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def _describe(info: dict) -> str:
    if not info:
        return "pid unknown"
    return f"pid {info.get('pid')} on {info.get('host')}, since {info.get('since')}"
