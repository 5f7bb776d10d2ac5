"""Speed of the verdicts of a run shaped like ``suites/mixture.yaml``: 2 datasets, the ``(data)``
row and 3 objectives, 5 seeds, every output the installed plugins declare (a superset of the ~24 a
mixture run reports) with random values: pairwise comparisons with bootstrap intervals and Holm,
ranks across datasets, and the summary with robust aggregates and tied-best marks. The issue's
budget is 2 seconds for the whole comparison (measured: about 1 s on 2 busy cores)."""

import numpy as np
import pandas as pd

from benchbench import compute_verdicts, default_registry
from benchbench.train.evaluation import TRAINING_OUTPUTS

DATASETS, OBJECTIVES, SEEDS = ("ring", "grid"), ("(data)", "minimax", "nonsaturating", "gmmn"), 5


def mixture_like_records(outputs, seed=0):
    rng = np.random.default_rng(seed)
    rows = [(f"{d}/{o}/{s}", f"{d}/{o}", d, o, s, metric, float(rng.normal(i, 1.0)), "")
            for d in DATASETS for i, o in enumerate(OBJECTIVES) for s in range(SEEDS) for metric in outputs]
    return pd.DataFrame(rows, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value", "note"])


def test_verdicts_of_a_mixture_run(benchmark):
    outputs = {**default_registry().outputs(), **{o.name: o for o in TRAINING_OUTPUTS}}
    records = mixture_like_records(outputs)
    benchmark.group = "verdicts"
    benchmark.extra_info.update(metrics=len(outputs), rows=len(records))
    found = benchmark.pedantic(compute_verdicts, args=(records, outputs), rounds=3, iterations=1, warmup_rounds=1)
    assert len(found.comparisons) and len(found.ranks) and found.summary["tied_best"].any()
