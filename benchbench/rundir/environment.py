"""Where a run happened: versions, device, plugins and the git commit, saved with every result."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from ..registry.components import Registry
from ..train.timing import describe_device


def environment(registry: Registry, device: str) -> dict[str, Any]:
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.version.cuda,
        "device": describe_device(torch.device(device)),
        "benchbench": version(),
        "git": git_state(Path(__file__).resolve().parent),
        "plugins": {name: {"module": p.module, "distribution": p.distribution, "version": p.version}
                    for name, p in sorted(registry.plugins.items())},
        "plugin_failures": [str(f) for f in registry.failures],
    }


def version() -> str:
    try:
        return metadata.version("benchbench")
    except metadata.PackageNotFoundError:
        return "unknown"


def git_state(directory: Path) -> dict[str, Any] | None:
    """Commit and dirtiness of the checkout holding ``directory``; None outside a git checkout.
    Read-only: ``--no-optional-locks`` keeps ``git status`` from refreshing the index, so a run
    never takes ``.git/index.lock`` in the user's checkout (nor races their own git commands)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", "-C", str(directory), *args], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip()
    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.SubprocessError):
        return None
