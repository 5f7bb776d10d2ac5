"""Downloads of the files a dataset is built from, verified by checksum, for any dataset plugin.

:func:`download` makes sure that every :class:`RemoteFile` of a list lies in a directory with its
published checksum, or with the published *content*: a file also passes when its decoded content
(the decompressed bytes of a gzip file, from any compressor; an uncompressed file itself) has the
``content`` checksum recorded for it, so a recompressed copy (a distribution's package) or a
decompressed one (torchvision's ``raw/`` folders) is accepted. A file already there that passes is
used as it is (no network: works offline); a missing one is fetched from its mirrors in turn. Each
download streams into a temporary file next to the final one and is renamed only once its checksum
matches, so an interrupted, broken or wrong download never leaves a file under the final name.

What goes wrong is said in one line: :class:`DataFileError` for a file with the wrong checksum (or
a damaged gzip stream, or, from the dataset that reads it, the wrong format),
:class:`~benchbench.ConfigError` for files that could not be had (offline, every mirror failed,
downloads switched off), naming the files to place and the directory to place them in.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import http.client
import logging
import os
import socket
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from .errors import BenchbenchError, ConfigError

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0  # per connection attempt and per read; a dead mirror is given up quickly
CHUNK = 1 << 20  # bytes read and hashed at a time
USER_AGENT = "benchbench (dataset download)"
GZIP_MAGIC = b"\x1f\x8b"


class DataFileError(BenchbenchError):
    """A data file is not what it should be (wrong checksum, unreadable format); names the file."""

    def __init__(self, path: str | Path, message: str):
        self.path = Path(path)
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self):  # rebuilt from both arguments when a worker process sends it back
        return type(self), (self.path, self.message)


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, its published checksum, and where to get it.

    The file is downloaded from ``mirror + name`` for each mirror in turn (each mirror is a URL
    prefix ending in ``/``; ``file://`` URLs work too). ``algorithm`` is the checksum's: SHA-256,
    or MD5 where that is what the publisher gives (integrity against damage, not security).
    ``content`` is the SHA-256 of the file's decoded content (:func:`content_checksum`), where known:
    a file with either checksum passes.
    """

    name: str  # file name in the directory, and the last part of its URL
    checksum: str  # hex digest, lower case
    algorithm: Literal["sha256", "md5"] = "sha256"
    mirrors: tuple[str, ...] = ()  # URL prefixes, tried in order
    content: str = ""  # SHA-256 of the decoded content (hex, lower case); "": not known, only `checksum` passes


def file_checksum(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of the file at ``path``."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def is_gzip(path: str | Path) -> bool:
    """Whether the file at ``path`` starts with the gzip magic number."""
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def content_checksum(path: str | Path) -> str:
    """SHA-256 of the decoded content of the file at ``path``: its decompressed bytes if it is a gzip
    file (whatever compressor wrote it), else its bytes. A truncated or damaged gzip file raises
    :class:`DataFileError`."""
    if not is_gzip(path):
        return file_checksum(path)
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                digest.update(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataFileError(path, f"damaged gzip file ({_describe(exc)}); delete it, or replace it with the "
                                  f"published file") from None
    return digest.hexdigest()


def download(files: Sequence[RemoteFile], directory: str | Path, *, allowed: bool = True,
             where: str = "", hint: str = "", timeout: float = TIMEOUT_S) -> dict[str, Path]:
    """Make sure every file of ``files`` lies in ``directory`` with its checksum; name -> path.

    Files already present are only verified. Missing files are downloaded when ``allowed``.
    ``where`` prefixes the error of missing files (e.g. the suite key ``datasets.mnist``) and
    ``hint`` ends it (e.g. how to point the dataset at another directory).

    Raises :class:`DataFileError` for a present file with the wrong checksum, and a one-line
    :class:`ConfigError` naming the files to place in ``directory`` when some could not be had.
    """
    directory = Path(directory).expanduser()
    paths, missing, reasons, unreachable = {}, [], [], set()
    for file in files:
        path = directory / file.name
        if path.exists():
            verify(path, file)
        elif allowed:
            reason = _fetch(file, path, timeout, unreachable)
            if reason:
                reasons.append(f"{file.name}: {reason}")
        if path.exists():
            paths[file.name] = path
        else:
            missing.append(file)
    if missing:
        why = f"download failed ({reasons[0]}{'; ...' if len(reasons) > 1 else ''})" if reasons else \
            "downloads are switched off (download: false)"
        sources = ", ".join(dict.fromkeys(m for f in missing for m in f.mirrors)) or "its publisher"
        raise ConfigError(where, f"{why}; place {', '.join(f.name for f in missing)} in {directory} "
                                 f"(from {sources}){'; ' + hint if hint else ''}")
    return paths


def verify(path: Path, file: RemoteFile) -> None:
    """Raise :class:`DataFileError` unless the file at ``path`` has ``file``'s checksum or, where
    ``file.content`` is known, its decoded content has that checksum."""
    got = file_checksum(path, file.algorithm)
    if got == file.checksum:
        return
    if not file.content:
        raise DataFileError(path, f"wrong {file.algorithm} checksum: expected {file.checksum}, got {got}; "
                                  f"delete it to download it again, or replace it with the published file")
    content = content_checksum(path)
    if content != file.content:
        raise DataFileError(path, f"neither the published file nor its content: expected {file.algorithm} "
                                  f"{file.checksum} of the file or sha256 {file.content} of its decoded content, "
                                  f"got {got} and {content}; delete it to download it again, or replace it "
                                  f"with the published file")


def _fetch(file: RemoteFile, path: Path, timeout: float, unreachable: set[str]) -> str:
    """Download ``file`` to ``path`` from its first mirror that serves it with the right checksum;
    "" on success, else why the last mirror failed. Mirrors in ``unreachable`` are skipped, and
    a mirror that cannot be reached (no DNS, refused, timed out) is added to it, so an offline
    machine waits at most one timeout per mirror."""
    mirrors = [m for m in file.mirrors if m not in unreachable]
    if not mirrors:
        return "no reachable mirror" if file.mirrors else "no mirror known"
    path.parent.mkdir(parents=True, exist_ok=True)
    reason = ""
    for mirror in mirrors:
        url = mirror + file.name
        log.info("downloading %s", url)
        try:
            got = _stream(url, path, file, timeout)
        except (OSError, http.client.HTTPException, ValueError) as exc:  # offline, HTTP error, timeout, bad URL
            if _cannot_connect(exc):
                unreachable.add(mirror)
            reason = f"{url}: {_describe(exc)}"
            continue
        if got == file.checksum:
            return ""
        reason = f"{url}: wrong {file.algorithm} checksum: expected {file.checksum}, got {got}"
    return reason


def _stream(url: str, path: Path, file: RemoteFile, timeout: float) -> str:
    """Copy ``url`` into a temporary file next to ``path``, renamed to ``path`` only when its
    checksum is ``file``'s (else removed); returns the checksum of what came."""
    digest = hashlib.new(file.algorithm)
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            for block in iter(lambda: response.read(CHUNK), b""):
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() == file.checksum:
            os.replace(tmp, path)
        return digest.hexdigest()
    finally:
        Path(tmp).unlink(missing_ok=True)


def _cannot_connect(exc: Exception) -> bool:
    """True when the error says the host is unreachable (no DNS, refused, timed out), not that
    it lacks the file."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    return isinstance(reason, (socket.gaierror, TimeoutError, ConnectionError))


def _describe(exc: Exception) -> str:
    """One line for a network error: the HTTP status, the socket error, or the exception."""
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}"
    else:
        text = str(exc.reason if isinstance(exc, urllib.error.URLError) else exc)
    return " ".join(text.split()) or type(exc).__name__
