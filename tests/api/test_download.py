"""benchbench.api.download: verified, atomic downloads from mirrors; never touches the network (file://
URLs, a loopback http.server, or a patched urlopen)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import pickle
import socket
import threading
import urllib.error
import urllib.request

import pytest

from benchbench import ConfigError, DataFileError, RemoteFile, download
from benchbench.api.download import content_checksum

CONTENT = b"the published bytes\n" * 100


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def mirror(tmp_path, name: str, files: dict[str, bytes]) -> str:
    """A file:// mirror holding ``files``; its URL prefix."""
    folder = tmp_path / name
    folder.mkdir()
    for file, data in files.items():
        (folder / file).write_bytes(data)
    return folder.as_uri() + "/"


def leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def no_network(monkeypatch):
    """urlopen that fails as on a machine without network; counts the attempts."""
    calls = []

    def offline(request, timeout=None):
        calls.append(request.full_url)
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return calls


def test_present_file_with_the_right_checksum_needs_no_network(tmp_path, no_network):
    (tmp_path / "a.bin").write_bytes(CONTENT)
    file = RemoteFile("a.bin", sha256(CONTENT), mirrors=("https://example.invalid/",))
    assert download([file], tmp_path) == {"a.bin": tmp_path / "a.bin"}
    assert no_network == []


def test_downloads_from_the_first_mirror_that_has_the_file(tmp_path):
    empty = mirror(tmp_path, "empty", {})
    full = mirror(tmp_path, "full", {"a.bin": CONTENT, "b.bin": b"other"})
    files = [RemoteFile("a.bin", sha256(CONTENT), "sha256", (empty, full)),
             RemoteFile("b.bin", hashlib.md5(b"other").hexdigest(), "md5", (empty, full))]
    target = tmp_path / "cache" / "data"
    paths = download(files, target)
    assert paths["a.bin"].read_bytes() == CONTENT and paths["b.bin"].read_bytes() == b"other"
    assert leftovers(target) == ["a.bin", "b.bin"]  # no temporary files


def test_a_mismatching_download_leaves_no_file(tmp_path):
    bad = mirror(tmp_path, "bad", {"a.bin": b"tampered"})
    file = RemoteFile("a.bin", sha256(CONTENT), mirrors=(bad,))
    target = tmp_path / "data"
    with pytest.raises(ConfigError) as error:
        download([file], target, where="dataset toy")
    message = str(error.value)
    assert "\n" not in message and message.startswith("dataset toy: ")
    assert f"expected {sha256(CONTENT)}, got {sha256(b'tampered')}" in message
    assert f"place a.bin in {target}" in message
    assert leftovers(target) == []


def test_a_present_file_with_the_wrong_checksum_is_an_error_naming_it(tmp_path, no_network):
    (tmp_path / "a.bin").write_bytes(b"damaged")
    file = RemoteFile("a.bin", hashlib.md5(CONTENT).hexdigest(), "md5", ("https://example.invalid/",))
    with pytest.raises(DataFileError) as error:
        download([file], tmp_path)
    message = str(error.value)
    assert str(tmp_path / "a.bin") in message and "md5" in message
    assert hashlib.md5(CONTENT).hexdigest() in message and hashlib.md5(b"damaged").hexdigest() in message
    assert (tmp_path / "a.bin").read_bytes() == b"damaged" and no_network == []
    copy = pickle.loads(pickle.dumps(error.value))  # crosses process boundaries intact
    assert type(copy) is DataFileError and str(copy) == message


def test_offline_names_the_files_the_directory_and_how_to_move_it(tmp_path, no_network):
    mirrors = ("https://one.invalid/", "https://two.invalid/")
    files = [RemoteFile(name, sha256(name.encode()), mirrors=mirrors) for name in ("x.gz", "y.gz", "z.gz")]
    with pytest.raises(ConfigError) as error:
        download(files, tmp_path / "d", where="dataset toy", hint="$BENCHBENCH_CACHE moves it")
    message = str(error.value)
    assert "\n" not in message and "name resolution" in message
    assert f"place x.gz, y.gz, z.gz in {tmp_path / 'd'}" in message and "$BENCHBENCH_CACHE" in message
    assert sorted(no_network) == ["https://one.invalid/x.gz", "https://two.invalid/x.gz"]  # unreachable: tried once
    assert leftovers(tmp_path / "d") == []


def test_downloads_switched_off_never_touch_the_network(tmp_path, no_network):
    file = RemoteFile("a.bin", sha256(CONTENT), mirrors=("https://example.invalid/",))
    with pytest.raises(ConfigError, match="switched off.*place a.bin in"):
        download([file], tmp_path, allowed=False)
    assert no_network == []


def test_an_interrupted_download_leaves_no_file(tmp_path, monkeypatch):
    class Broken:
        def __init__(self):
            self.parts = [b"half of it", OSError("connection reset by peer")]

        def read(self, size):
            part = self.parts.pop(0)
            if isinstance(part, Exception):
                raise part
            return part

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda request, timeout=None: Broken())
    file = RemoteFile("a.bin", sha256(CONTENT), mirrors=("https://example.invalid/",))
    with pytest.raises(ConfigError, match="connection reset by peer"):
        download([file], tmp_path / "d")
    assert leftovers(tmp_path / "d") == []


def test_over_http_with_a_missing_file_on_one_mirror(tmp_path):
    mirror(tmp_path, "www", {"a.bin": CONTENT})

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "www"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        good = RemoteFile("a.bin", sha256(CONTENT), mirrors=(base + "missing/", base))
        assert download([good], tmp_path / "d", timeout=5)["a.bin"].read_bytes() == CONTENT
        absent = RemoteFile("nope.bin", sha256(b""), mirrors=(base,))
        with pytest.raises(ConfigError, match="HTTP 404"):
            download([absent], tmp_path / "d", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert leftovers(tmp_path / "d") == ["a.bin"]


# ---- the published content: recompressed or decompressed copies pass (issue 27) ------------------

def gzipped(data: bytes, level: int, mtime: float) -> bytes:
    """``data`` gzip-compressed as another compressor (level, timestamp) would write it."""
    return gzip.compress(data, compresslevel=level, mtime=mtime)


def test_a_copy_with_the_published_content_passes_whatever_its_container(tmp_path, no_network):
    published = gzipped(CONTENT, 9, 0)
    file = RemoteFile("a.gz", hashlib.md5(published).hexdigest(), "md5", ("https://example.invalid/",), sha256(CONTENT))
    for name, data in {"published": published, "recompressed": gzipped(CONTENT, 1, 1.6e9), "plain": CONTENT}.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.gz").write_bytes(data)
        assert download([file], tmp_path / name)["a.gz"] == tmp_path / name / "a.gz", name
        assert content_checksum(tmp_path / name / "a.gz") == sha256(CONTENT)
    assert no_network == []


def test_other_content_names_both_checksums_and_a_damaged_gzip_says_so(tmp_path, no_network):
    published = gzipped(CONTENT, 9, 0)
    file = RemoteFile("a.gz", hashlib.md5(published).hexdigest(), "md5", (), sha256(CONTENT))
    (tmp_path / "a.gz").write_bytes(gzipped(b"other content", 9, 0))
    with pytest.raises(DataFileError) as error:
        download([file], tmp_path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "a.gz"))
    assert file.checksum in message and sha256(CONTENT) in message and sha256(b"other content") in message
    (tmp_path / "a.gz").write_bytes(published[:-20])  # truncated
    with pytest.raises(DataFileError, match="a.gz: damaged gzip file") as error:
        download([file], tmp_path)
    assert "\n" not in str(error.value)
    without = RemoteFile("a.gz", file.checksum, "md5")  # no content known: only the published file passes
    (tmp_path / "a.gz").write_bytes(gzipped(CONTENT, 1, 0))
    with pytest.raises(DataFileError, match=f"wrong md5 checksum: expected {file.checksum}"):
        download([without], tmp_path)


def test_exclusive_lets_one_process_build_a_cached_file_while_the_others_wait(tmp_path):
    """Two processes asking for the same missing file: the second waits for the first's lock, then
    finds the file built (a run's workers train a missing classifier once)."""
    import multiprocessing
    import time

    from benchbench import exclusive

    target = tmp_path / "built.txt"
    context = multiprocessing.get_context("spawn")
    with exclusive(target):
        waiter = context.Process(target=_build_once, args=(str(target),))
        waiter.start()
        time.sleep(0.5)
        assert waiter.is_alive()  # blocked on the lock while this process builds
        target.write_text("built by the first")
    waiter.join(30)
    assert waiter.exitcode == 0
    assert target.read_text() == "built by the first"  # the waiter found it and did not build it again


def _build_once(path: str) -> None:
    from pathlib import Path

    from benchbench import exclusive

    with exclusive(path):
        if not Path(path).exists():
            Path(path).write_text("built by the second")
