"""A row is identified by its labels: two labels with identical settings are two rows (records,
tables, comparisons, reports), trained once. Two identical objectives are the A/A test of the
verdicts: P(improvement) 0.5 and no significant difference on any metric."""

import json

import pandas as pd
import pytest

from benchbench import default_registry, parse_suite, run
from benchbench.plan.cells import REFERENCE
from benchbench.report.reporting import rebuild

TWINS = {
    "name": "twins",
    "seeds": 3,
    "steps": 6,
    "eval": {"samples": 120, "every": 0, "curve_samples": 60, "plot_samples": 10},
    "datasets": {"ring": {}},
    "objectives": {"nonsaturating": {"critic_steps": 2, "batch_size": 16, "hidden": [8], "critic_hidden": [8]},
                   "twin": {"type": "nonsaturating", "critic_steps": 2, "batch_size": 16, "hidden": [8],
                            "critic_hidden": [8]}},
    "metrics": ["kde-divergence", "modes"],
    "reporters": ["markdown"],
    "execution": {"workers": 1},
}


def run_counting(raw, tmp_path):
    trained = []
    outcome = run(parse_suite(raw, default_registry(), source="s.yaml"), out=tmp_path / "run",
                  progress=trained.append)
    return outcome, sum(trained)


def test_two_labels_with_identical_settings_are_two_rows_trained_once(tmp_path):
    outcome, member_steps = run_counting(TWINS, tmp_path)
    assert member_steps == TWINS["steps"] * TWINS["seeds"]  # the identical setting trained once, not twice
    records = pd.read_csv(outcome.directory / "records.csv")
    assert list(dict.fromkeys(records["objective"])) == [REFERENCE, "nonsaturating", "twin"]
    for table in (outcome.summary, outcome.records):
        assert set(table["objective"]) == {REFERENCE, "nonsaturating", "twin"}
    summary = outcome.summary.set_index(["objective", "metric"])
    assert (summary.loc["nonsaturating", "mean"].to_numpy() == summary.loc["twin", "mean"].to_numpy()).all()
    assert "twin" in (outcome.directory / "summary.md").read_text()
    assert "| nonsaturating" in (outcome.directory / "summary.md").read_text()
    assert not any("no result" in p for p in outcome.problems), outcome.problems
    # each row keeps a cell file naming its own labels, so `benchbench report` lists both too
    labels = {(d["objective"], d["seed"]) for d in
              (json.loads(p.read_text()) for p in (outcome.directory / "cells").glob("*.json"))}
    assert {(o, s) for o in ("nonsaturating", "twin") for s in range(3)} <= labels
    rebuilt, failed = rebuild(outcome.directory, default_registry())  # `benchbench report`, nothing trained
    assert not failed and list(dict.fromkeys(rebuilt.records["objective"])) == [REFERENCE, "nonsaturating", "twin"]
    pd.testing.assert_frame_equal(rebuilt.comparisons, outcome.comparisons)


@pytest.mark.slow  # two runs
def test_resume_retrains_the_member_of_a_missing_copy_and_rewrites_nothing_finished(tmp_path):
    first, _ = run_counting(TWINS, tmp_path)
    cells = {(d["objective"], d["seed"]): p for p in (first.directory / "cells").glob("*.json")
             for d in [json.loads(p.read_text())]}
    trained = cells["nonsaturating", 1].read_bytes()
    lost = cells["twin", 1].read_bytes()
    for path in (cells["twin", 1], cells["twin", 1].with_suffix(".npy")):
        path.unlink()
    resumed, member_steps = run_counting(TWINS, tmp_path)
    assert resumed.skipped_cells == 3 * 3 - 1 and member_steps == TWINS["steps"]  # one member, for the copy
    assert cells["nonsaturating", 1].read_bytes() == trained  # found finished: kept as it was
    again = json.loads(cells["twin", 1].read_text())
    assert again["scores"]["modes_captured"] == json.loads(lost)["scores"]["modes_captured"]
    untimed = lambda summary: summary[~summary["metric"].str.endswith("_s")].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(untimed(resumed.summary), untimed(first.summary))


def test_the_a_a_comparison_finds_no_difference_on_any_metric(tmp_path):
    outcome, _ = run_counting(TWINS, tmp_path)
    pairs = outcome.comparisons
    assert set(zip(pairs["objective_a"], pairs["objective_b"])) == {("nonsaturating", "twin")}
    assert len(pairs) >= 3  # every comparable metric
    assert (pairs["p_improve"] == 0.5).all()
    assert (pairs["p_value"] == 1.0).all() and (pairs["p_holm"] == 1.0).all()
    assert not pairs["significant"].any() and (pairs["winner"] == "~").all()
    assert (pairs["diff"] == 0).all()


def test_two_dataset_labels_with_identical_settings_are_two_rows(tmp_path):
    raw = {**TWINS, "datasets": {"ring": {}, "ring-again": {"type": "ring"}},
           "objectives": {"nonsaturating": TWINS["objectives"]["nonsaturating"]}}
    outcome, member_steps = run_counting(raw, tmp_path)
    assert member_steps == TWINS["steps"] * TWINS["seeds"]
    records = pd.read_csv(outcome.directory / "records.csv")
    assert set(zip(records["dataset"], records["objective"])) == {
        (d, o) for d in ("ring", "ring-again") for o in (REFERENCE, "nonsaturating")}
    first, again = (records[records["dataset"] == d].drop(columns=["dataset", "cell", "job"]).reset_index(drop=True)
                    for d in ("ring", "ring-again"))
    pd.testing.assert_frame_equal(first, again)


def test_a_a_verdicts_on_identical_samples_for_both_tests():
    from benchbench.stats.verdicts import comparisons
    from benchbench.train.evaluation import TRAINING_OUTPUTS

    outputs = {**default_registry().outputs(), **{o.name: o for o in TRAINING_OUTPUTS}}
    values = [0.3, 0.1, 0.7, 0.2, 0.9]
    records = pd.DataFrame([("ring", o, s, m, v) for o in ("a", "a-again") for m in ("jsd", "modes_captured")
                            for s, v in enumerate(values)], columns=["dataset", "objective", "seed", "metric", "value"])
    for test in ("mannwhitneyu", "welch"):
        pairs = comparisons(records, outputs, test=test)
        assert len(pairs) == 2 and (pairs["p_improve"] == 0.5).all() and (pairs["p_value"] == 1.0).all()
        assert (pairs["diff_low"] <= 0).all() and (pairs["diff_high"] >= 0).all() and not pairs["significant"].any()


def test_identical_objectives_in_a_search_are_two_rows_of_trials_and_results_trained_once(tmp_path):
    gmmn = {"batch_size": 16, "hidden": [8], "search": {"lr": [1e-3, 1e-2]}}
    raw = {**TWINS, "objectives": {"gmmn": gmmn, "twin": {"type": "gmmn", **gmmn}}, "metrics": ["kde-divergence"],
           "search": {"trials": 3, "seeds": 2, "select": {"metric": "jsd"}}}
    outcome, member_steps = run_counting(raw, tmp_path)
    assert member_steps == TWINS["steps"] * (3 * 2 + TWINS["seeds"])  # trials x selection seeds, then the final seeds
    trials = pd.read_csv(outcome.directory / "trials.csv")
    assert trials.groupby("objective").size().to_dict() == {"gmmn": 6, "twin": 6}
    by = {o: g.drop(columns=["objective", "cell"]).reset_index(drop=True) for o, g in trials.groupby("objective")}
    pd.testing.assert_frame_equal(by["gmmn"], by["twin"])
    assert set(outcome.records["objective"]) == {REFERENCE, "gmmn", "twin"}
    assert outcome.report.chosen["ring", "gmmn"] == outcome.report.chosen["ring", "twin"]
