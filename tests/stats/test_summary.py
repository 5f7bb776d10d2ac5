"""Tables mark cells whose seeds miss values (estimator failures); summaries and verdicts leave
out-of-range values out."""

import math

import pandas as pd
import pytest

from benchbench import Output
from benchbench.stats.summary import summarize, tables
from benchbench.stats.verdicts import comparisons

OUTPUTS = {"jsd": Output("jsd", "divergence", "lower", range=(0.0, math.log(2)), tolerance=0.01)}
FAILURE = "estimator failure: jsd = -0.113 outside [0, 0.693] (metric 'kde-divergence')"


def records(values: dict[str, list[float]], notes: dict[tuple[str, int], str] = {}) -> pd.DataFrame:
    rows = [(f"{o}{s}", o, "ring", o, s, "jsd", v, notes.get((o, s), "")) for o, vs in values.items()
            for s, v in enumerate(vs)]
    return pd.DataFrame(rows, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value", "note"])


def cells(frame):
    [(_, _, table)] = tables(summarize(frame, OUTPUTS), OUTPUTS)
    return table["jsd"].to_dict()


def test_a_cell_with_a_failed_seed_says_so_and_one_with_no_value_is_n_a():
    frame = records({"a": [0.1, 0.11, math.nan, 0.12, 0.1], "b": [math.nan] * 5},
                    {("a", 2): FAILURE, **{("b", s): FAILURE for s in range(5)}})
    shown = cells(frame)
    assert shown["a"].strip("*").endswith(f"(n = 4; {FAILURE})") and shown["a"].strip("*").startswith("0.108 ±")
    assert shown["b"] == f"n/a ({FAILURE})"


def test_out_of_range_values_of_older_runs_count_nowhere():
    # records written before outputs declared ranges hold the raw value: -0.113 on a, seed 0
    # counted, it would make a's mean the best (0.27 against 0.32)
    frame = records({"a": [-0.113, 0.35, 0.36, 0.37, 0.38], "b": [0.3, 0.31, 0.32, 0.33, 0.34]})
    summary = summarize(frame, OUTPUTS).set_index("objective")
    assert summary.at["a", "n"] == 4 and summary.at["a", "mean"] == pytest.approx(0.365)
    found = comparisons(frame, OUTPUTS)
    assert found[["n_a", "n_b", "winner"]].values.tolist() == [[4, 5, "b"]]
    assert summary["verdict"].to_dict() == {"a": "worse", "b": "best"}
