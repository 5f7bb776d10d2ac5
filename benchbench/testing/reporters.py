"""Conformance checks of a reporter, on a small finished run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from ..api.outputs import Output
from ..api.reporter import Reporter, RunReport
from ..stats.summary import summarize
from .kit import KitMixture, _call, _component, _config, _fail, _label, _single_threaded

__tracebackhide__ = True


@_single_threaded
def check_reporter(reporter: type[Reporter] | str, directory: str | Path, settings: Mapping[str, Any] | None = None,
                   run: RunReport | None = None) -> list[Path]:
    """Check a reporter class (or the name of an installed one) against its contract; return the
    paths it wrote. Registrable, ``Config`` buildable from ``{}``; ``report(run, directory)`` on
    ``run`` (default: :func:`kit_run_report`) returns a list of paths of files it wrote inside
    ``directory``."""
    cls = _component("reporter", reporter)
    label = _label(cls)
    directory = Path(directory)
    instance = _call(label, "the constructor", cls, _config(cls, settings, label))
    paths = _call(label, "report", instance.report, run if run is not None else kit_run_report(directory), directory)
    if not isinstance(paths, list) or not all(isinstance(p, Path) for p in paths):
        _fail(label, f"report() returned {type(paths).__name__}; expected a list of pathlib.Path")
    for path in paths:
        if not path.is_file() or directory.resolve() not in path.resolve().parents:
            _fail(label, f"report() returned {path}, which is not a file it wrote inside {directory}")
    return paths


def kit_run_report(directory: Path, seeds: Sequence[int] = (0, 1, 2)) -> RunReport:
    """A small finished run on :class:`KitMixture`: the reference row and two objectives, final
    records and curves of two outputs, generated samples."""
    data = KitMixture()
    outputs = {o.name: o for o in (Output("kit_quality", "quality", "higher", "a quality score"),
                                   Output("kit_divergence", "divergence", "lower", "a divergence"))}
    records, curves, samples = [], [], {}
    for rank, objective in enumerate(("(data)", "kit-a", "kit-b")):
        for seed in seeds:
            cell = f"kit-mixture/{objective}/{seed}"
            for name in outputs:
                value = rank + 0.1 * seed
                records.append((cell, f"kit-mixture/{objective}", "kit-mixture", objective, seed, name, value))
                if objective != "(data)":
                    curves += [(cell, "kit-mixture", objective, seed, step, name, value + 1 / step) for step in (1, 10)]
            x = data.sample(200, torch.Generator().manual_seed(seed))
            samples["kit-mixture", objective, seed] = x * (1 + 0.1 * rank)
    records = pd.DataFrame(records, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value"])
    curves = pd.DataFrame(curves, columns=["cell", "dataset", "objective", "seed", "step", "metric", "value"])
    return RunReport("kit", Path(directory), records, curves, summarize(records, outputs), outputs,
                     {"kit-mixture": data}, samples)


