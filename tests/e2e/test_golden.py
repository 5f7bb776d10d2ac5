"""The golden run: a small mixture suite (tests/golden/mixture.yaml) trained at fixed seeds must
reproduce the metrics and curves saved from main before the blueprint refactor (issue 29).

Exact on the torch build that wrote the files (CI's: the CPU build of torch 2.13); within
``RTOL``/``ATOL`` on any other build, whose kernels may round differently. Timing metrics
(seconds, rates, memory) are not compared. ``BENCHBENCH_WRITE_GOLDEN=1`` rewrites the files: only for a
deliberate change of results, said in the commit message.
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchbench import run

GOLDEN = Path(__file__).parent.parent / "golden"
TIMING = {"train_time_s", "eval_time_s", "model_steps_per_s", "samples_per_s", "gflop_per_s", "peak_memory_mb"}
KEYS = ["dataset", "objective", "seed", "rung", "metric"]
RTOL, ATOL = 1e-3, 1e-6  # another torch build: the first steps agree to rounding, and 40 steps keep it small


def scores(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    records = pd.read_csv(directory / "records.csv")
    records = records[~records.metric.isin(TIMING)][KEYS + ["value"]]
    curves = pd.read_csv(directory / "curves.csv")[KEYS[:4] + ["step", "metric", "value"]]
    return (records.sort_values(KEYS).reset_index(drop=True),
            curves.sort_values(KEYS[:4] + ["step", "metric"]).reset_index(drop=True))


@pytest.mark.slow
def test_golden_run_reproduces_the_saved_metrics(tmp_path):
    outcome = run(GOLDEN / "mixture.yaml", out=tmp_path / "run")
    assert not outcome.failed_jobs, outcome.tracebacks
    records, curves = scores(outcome.directory)
    build = {"torch": torch.__version__}
    if os.environ.get("BENCHBENCH_WRITE_GOLDEN"):
        records.to_csv(GOLDEN / "records.csv", index=False, float_format="%.17g")
        curves.to_csv(GOLDEN / "curves.csv", index=False, float_format="%.17g")
        (GOLDEN / "build.json").write_text(json.dumps(build) + "\n")
        pytest.skip("golden files rewritten")
    saved_records = pd.read_csv(GOLDEN / "records.csv")
    saved_curves = pd.read_csv(GOLDEN / "curves.csv")
    exact = json.loads((GOLDEN / "build.json").read_text()) == build
    for name, got, saved in [("records", records, saved_records), ("curves", curves, saved_curves)]:
        keys = [c for c in saved.columns if c != "value"]
        assert got[keys].astype(str).equals(saved[keys].astype(str)), f"{name}: the rows differ from the golden run's"
        a, b = got.value.to_numpy(float), saved.value.to_numpy(float)
        if exact:
            differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
        else:
            differ = ~np.isclose(a, b, rtol=RTOL, atol=ATOL, equal_nan=True)
        assert not differ.any(), f"{name}: {differ.sum()} values differ from the golden run's:\n{got[differ].head(10)}\n" \
                                 f"saved:\n{saved[differ].head(10)}"
