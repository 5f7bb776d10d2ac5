"""A hostile user's tries: damaged run directories, killed runs, huge inputs, a full or read-only
disk, two runs on one directory. Each ends in one line and a run directory that still resumes."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from clirun import invoke

from benchbench import run


@pytest.fixture
def quick(tiny):
    """Two cells per job, two jobs: the reference of one dataset and one objective, no metrics."""
    tiny.update(steps=2, datasets={"ring": {}}, metrics=[], reporters=["markdown"],
                objectives={"gmmn": tiny["objectives"]["gmmn"]})
    return tiny


def _damage_json(text):
    return lambda cell: cell.write_text(text)


DAMAGES = {
    "garbage npy": lambda cell: cell.with_suffix(".npy").write_bytes(b"\x93NUMPY garbage"),
    "truncated npy header": lambda cell: cell.with_suffix(".npy").write_bytes(cell.with_suffix(".npy").read_bytes()[:20]),
    "pickled npy": lambda cell: np.save(cell.with_suffix(".npy"), np.array([{"a": 1}], dtype=object)),
    "integer npy": lambda cell: np.save(cell.with_suffix(".npy"), np.zeros((3, 2), dtype=np.int64)),
    "deleted npy": lambda cell: cell.with_suffix(".npy").unlink(),
    "npy a directory": lambda cell: (cell.with_suffix(".npy").unlink(), cell.with_suffix(".npy").mkdir()),
    "empty object": _damage_json("{}"),
    "a list": _damage_json("[]"),
    "NaN": _damage_json("NaN"),
    "truncated json": _damage_json('{"truncated": '),
    "scores text": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "scores": "oops"})),
    "score text": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "scores": {"x": "1"}})),
    "curves wrong": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "curves": [[1, 2]]})),
    "seed missing": lambda cell: cell.write_text(json.dumps({k: v for k, v in json.loads(cell.read_text()).items()
                                                            if k != "seed"})),
    "other cell": lambda cell: cell.write_text(json.dumps({**json.loads(cell.read_text()), "cell": "0" * 16})),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_cell_is_named_once_and_runs_again(quick, write_suite, tmp_path, damage):
    suite = write_suite(quick)
    first = run(suite, out=tmp_path / "r")
    cell = sorted((tmp_path / "r" / "cells").glob("*.json"))[0]
    DAMAGES[damage](cell)
    again = run(suite, out=tmp_path / "r")
    assert again.skipped_cells == 3 and not again.failed_jobs
    named = [p for p in again.problems if cell.stem in p]
    assert len(named) == 1 and "runs again" in named[0], again.problems
    assert len(again.records) == len(first.records)
    third = run(suite, out=tmp_path / "r")  # repaired: nothing left to run, nothing to warn about
    assert third.skipped_cells == 4 and not any(cell.stem in p for p in third.problems)


# ---- workers die with their run ----------------------------------------------------------------

def _children(pid):
    """Pids of the live (not zombie) processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc")
def test_a_killed_run_takes_its_workers_and_resource_tracker_with_it(tiny, write_suite, tmp_path):
    """One worker trains a long job when the run is killed, the other waits for work (the fast
    jobs are done): both must end within seconds, and so must the resource tracker."""
    tiny.update(steps=500, seeds=1, datasets={"ring": {}}, metrics=[], reporters=[], execution={"workers": 2},
                objectives={"nonsaturating": {"batch_size": 4096, "hidden": [256, 256]}, "gmmn": {"batch_size": 8}})
    tiny["eval"].update(every=0)
    out = tmp_path / "r"
    main = subprocess.Popen([sys.executable, "-m", "benchbench", "run", str(write_suite(tiny)), "--out", str(out),
                             "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while len(list(out.glob("cells/*.json"))) < 2 and time.monotonic() < deadline:  # gmmn and (data) done
            time.sleep(0.1)
        children = _children(main.pid)
        assert len(children) >= 3, children  # two workers and the resource tracker
    finally:
        main.kill()
        main.wait()
    killed, deadline = time.monotonic(), time.monotonic() + 5
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(f"{len(children)} children of the killed run gone after {time.monotonic() - killed:.2f} s")
    left = [pid for pid in children if _alive(pid)]
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running {time.monotonic() - deadline + 5:.1f} s after their run was killed"


# ---- the environment's errors: one line naming the path and the cause ----------------------------

def _cli(args, capsys):
    code, out, err = invoke(["run", *map(str, args), "-q"], capsys)
    return code, err


def _one_line(err, *parts):
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for part in parts:
        assert part in err, (part, err)


@pytest.fixture
def done(quick, write_suite, tmp_path):
    """(suite file, a finished run directory of it)."""
    suite = write_suite(quick)
    run(suite, out=tmp_path / "r")
    return suite, tmp_path / "r"


def test_out_that_cannot_be_a_run_directory(quick, write_suite, tmp_path, capsys):
    suite = write_suite(quick)
    (tmp_path / "file").write_text("x")
    for out, parts in (("", ("--out: is empty",)), ("  ", ("--out: is empty",)),
                       ("/dev/null", ("/dev/null: is not a directory",)),
                       (tmp_path / "file" / "sub", (f"{tmp_path / 'file'}: is a file, not a directory",))):
        code, err = _cli([suite, "--out", out], capsys)
        assert code == 2, (out, err)
        _one_line(err, *parts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "tiny.yaml"]  # nothing written anywhere


@pytest.mark.parametrize("damage, culprit, cause", [
    (lambda r: (r / "suite.yaml").write_text("{[ not: yaml"), "suite.yaml", "invalid YAML"),
    (lambda r: (r / "suite.yaml").write_text("- a list"), "suite.yaml", "but a suite must be a mapping"),
    (lambda r: (shutil.rmtree(r / "cells"), (r / "cells").write_text("")), "cells", "is a file where"),
    (lambda r: ((r / "environment.json").unlink(), (r / "environment.json").mkdir()), "environment.json",
     "is a directory where"),
    (lambda r: ((r / "records.csv").unlink(), (r / "records.csv").mkdir()), "records.csv", "is a directory where"),
], ids=["garbage suite.yaml", "suite.yaml a list", "cells a file", "environment.json a directory",
        "records.csv a directory"])
def test_a_run_directory_in_a_bad_state_is_one_line(done, capsys, damage, culprit, cause):
    suite, directory = done
    damage(directory)
    code, err = _cli([suite, "--out", directory], capsys)
    assert code == 2
    _one_line(err, f"{directory / culprit}", cause)


def _mount(*args):
    try:
        result = subprocess.run(["mount", *map(str, args)], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        pytest.skip(f"cannot mount: {exc}")
    if result.returncode:
        pytest.skip(f"cannot mount (needs root): {result.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path):
    """A fresh 2 MiB tmpfs (skipped where mounting is not allowed)."""
    path = tmp_path / "mnt"
    path.mkdir()
    _mount("-t", "tmpfs", "-o", "size=2m", "tmpfs", path)
    yield path
    subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_file_system_is_one_line(quick, write_suite, tmpfs, capsys):
    suite = write_suite(quick)
    run(suite, out=tmpfs / "r")
    _mount("-o", "remount,ro", tmpfs)
    code, err = _cli([suite, "--out", tmpfs / "r"], capsys)
    assert code == 2
    _one_line(err, str(tmpfs / "r"), "read-only file system")


def test_a_full_disk_stops_the_run_with_the_finished_cells_saved_and_resumable(quick, write_suite, tmpfs):
    """The disk fills up while a cell trains: saving it is one line (exit code 1), no temporary
    file is left, the other cells are kept, and the same command finishes the run once there is room."""
    from benchbench.rundir.storage import StorageError
    suite = write_suite(quick)
    first = run(suite, out=tmpfs / "r")
    trained = [c for c in (tmpfs / "r" / "cells").glob("*.json") if json.loads(c.read_text())["objective"] == "gmmn"]
    trained[0].unlink()
    trained[0].with_suffix(".npy").unlink()
    filler = tmpfs / "filler"

    def fill_the_disk(_steps):
        if not filler.exists():
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * 4096)
            os.close(fd)

    with pytest.raises(StorageError) as error:
        run(suite, out=tmpfs / "r", progress=fill_the_disk)
    assert error.value.exit_code == 1 and "\n" not in str(error.value)
    assert str(error.value).startswith(str(tmpfs / "r" / "cells" / trained[0].stem))
    assert "no space left on the device; the run stopped; the cells finished are saved" in str(error.value)
    assert len(list((tmpfs / "r" / "cells").glob("*.json"))) == 3
    assert not list((tmpfs / "r").rglob("*.part")) and not (tmpfs / "r" / "run.lock").exists()
    filler.unlink()
    again = run(suite, out=tmpfs / "r")
    assert again.skipped_cells == 3 and len(again.records) == len(first.records)


@pytest.mark.slow
def test_a_file_size_limit_after_training_stops_the_run_with_every_cell_kept(quick, write_suite, tmp_path):
    """RLIMIT_FSIZE (ulimit -f) lets every cell through but not curves.csv, which holds the curves of
    them all: exit 1, one line naming the file, and the run resumes from the saved cells."""
    quick.update(steps=100, eval={**quick["eval"], "every": 1})  # cells of 100 curve points: ~6 kB
    suite = write_suite(quick)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (8000, 8000)); "
    process = subprocess.run([sys.executable, "-c", limit + "from benchbench.cli import main; main()", "run",
                              str(suite), "--out", str(tmp_path / "r"), "-q"], capture_output=True, text=True,
                             timeout=300)
    assert process.returncode == 1, process.stderr
    _one_line(process.stderr, f"{tmp_path / 'r' / 'curves.csv'}: file too large", "the run stopped")
    assert len(list((tmp_path / "r" / "cells").glob("*.json"))) == 4 and not list((tmp_path / "r").rglob("*.part"))
    again = run(suite, out=tmp_path / "r")
    assert again.skipped_cells == 4 and (tmp_path / "r" / "curves.csv").stat().st_size > 8000


@pytest.mark.slow
def test_plots_are_written_whole_or_not_at_all(quick, write_suite, tmp_path):
    """Under a file-size limit the PNGs fail (a warning naming the reporter): none is left truncated."""
    quick.update(reporters=["plots", "markdown"])
    suite = write_suite(quick)
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
    process = subprocess.run([sys.executable, "-c", limit + "from benchbench.cli import main; main()", "run",
                              str(suite), "--out", str(tmp_path / "r"), "-q"], capture_output=True, text=True,
                             timeout=300)
    assert "reporter 'plots'" in process.stderr and "file too large" in process.stderr.lower(), process.stderr
    for png in (tmp_path / "r").rglob("*.png"):
        assert png.read_bytes().endswith(b"IEND\xaeB`\x82"), f"{png} is truncated"
    assert not list((tmp_path / "r").rglob("*.part"))


# ---- one run at a time in a run directory ------------------------------------------------------

HOLD = "import sys, time; from pathlib import Path; from benchbench.rundir import lock; " \
       "lock.acquire(Path(sys.argv[1])); print('locked', flush=True); time.sleep(600)"


@pytest.mark.slow
def test_a_directory_in_use_is_refused_and_a_dead_runs_lock_taken_over(done, capsys):
    suite, directory = done
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(directory)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        code, err = _cli([suite, "--out", directory], capsys)
        assert code == 2
        _one_line(err, f"{directory}: in use by another run (pid {holder.pid} on ", "choose another --out")
    finally:
        holder.kill()
        holder.wait()
    again = run(suite, out=directory)  # its lock file is still there, but nobody holds it
    assert any(f"took over the lock of a run that is no longer running (pid {holder.pid}" in p
               for p in again.problems), again.problems
    assert not (directory / "run.lock").exists()  # released when the run returned


def test_the_lock_is_released_on_ctrl_c(done):
    suite, directory = done
    trained = [c for c in (directory / "cells").glob("*.json") if json.loads(c.read_text())["objective"] == "gmmn"]
    trained[0].unlink()  # one cell to train again

    def interrupt(_steps):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(suite, out=directory, progress=interrupt)
    assert not (directory / "run.lock").exists()
    assert run(suite, out=directory).skipped_cells == 3


# ---- the environment record leaves the user's git checkout alone -------------------------------

@pytest.mark.slow
def test_the_git_state_is_read_without_taking_the_index_lock(tmp_path):
    """A tracked file touched after the commit makes a plain `git status` refresh and rewrite the
    index (through .git/index.lock); the environment record must leave the index as it is."""
    from benchbench.rundir.environment import git_state
    git = lambda *args: subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    (tmp_path / "tracked.txt").write_text("a")
    git("add", "tracked.txt")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    os.utime(tmp_path / "tracked.txt", (1, 1))  # stale stat data in the index: status would refresh it
    index = tmp_path / ".git" / "index"
    before = index.stat()
    state = git_state(tmp_path)
    assert state is not None and state["dirty"] is False
    after = index.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "the index was rewritten"
    git("status", "--porcelain")  # the same, with git's optional lock: the index is rewritten
    assert (index.stat().st_ino, index.stat().st_mtime_ns) != (before.st_ino, before.st_mtime_ns)


# ---- reporters with odd settings -------------------------------------------------------------------

def test_no_plot_samples_and_a_300_character_label(quick, write_suite, tmp_path):
    label = "r" * 300
    quick.update(datasets={label: {"type": "ring"}}, reporters=["plots", "markdown"])
    quick["eval"]["plot_samples"] = 0
    outcome = run(write_suite(quick), out=tmp_path / "r")
    assert not [p for p in outcome.problems if "reporter" in p], outcome.problems
    names = sorted(p.name for p in (tmp_path / "r" / "plots").iterdir())
    assert names and all(len(n) < 100 and n.startswith(("curves_rrrr", "samples_rrrr")) for n in names), names
    assert not any(n.startswith("samples_") for n in names)  # nothing to draw


def test_long_labels_give_short_distinct_file_names():
    from benchbench import file_label
    a, b = file_label("x" * 300 + "a"), file_label("x" * 300 + "b")
    assert len(a) == len(b) == 60 and a != b and a.startswith("x" * 51 + "-")
    assert file_label("(data)") == "_data_" and file_label("ring-2.d_x") == "ring-2.d_x"
