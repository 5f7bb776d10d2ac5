"""The example plugin packages in examples/, used as a user would: pip-installed offline into a
temporary target (so the test environment's plugins stay as they are) and run as commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPT = Path(sys.executable).parent / "benchbench"  # the console script beside this interpreter
TIMEOUT = 180  # seconds per command


def install(example: str, root: Path) -> tuple[Path, Path]:
    """(source copy, target directory): ``examples/<example>`` copied out of the repository (a
    build writes build/ and *.egg-info next to the sources) and pip-installed offline into the target."""
    source, target = root / example, root / "site"
    shutil.copytree(EXAMPLES / example, source, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", ".benchmarks", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--no-cache-dir", "--target", str(target), str(source)],
                   check=True, capture_output=True, timeout=TIMEOUT)
    return source, target


def run(installed: tuple[Path, Path], *args: str, cwd: Path | None = None,
        restrict: str | None = None) -> subprocess.CompletedProcess:
    """``benchbench ARGS`` (or ``pytest ARGS`` when ``args[0] == "pytest"``) with the example on
    the path (as after `pip install`), in a clean environment."""
    source, target = installed
    env = {k: v for k, v in os.environ.items() if k not in ("BENCHBENCH_PLUGINS", "PYTHONPATH")}
    env.update(PYTHONPATH=str(target), BENCHBENCH_CACHE=str(target.parent / "cache"), MPLBACKEND="Agg",
               OMP_NUM_THREADS="1")  # as tests/conftest.py: tiny tensors, a shared machine
    if restrict is not None:
        env["BENCHBENCH_PLUGINS"] = restrict
    command = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "benchbench"]
    if args[0] == "pytest":
        command = [sys.executable, "-m", "pytest"]
        args = args[1:]
    return subprocess.run([*command, *args], cwd=cwd or source, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
