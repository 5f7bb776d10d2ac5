"""Budget ladders end to end: one training scored at every rung (or every rung retrained), each rung
a cell and a record of its own, resumed, reported, compared; the tables are the top rung's."""

import copy
import dataclasses
import json
import shutil

import pandas as pd
import pytest
from clirun import invoke

from benchbench import default_registry, describe_budget, parse_suite, run
from benchbench.plan.cells import plan
from benchbench.plan.ladder import retrains
from benchbench.report.compare import compare_runs
from benchbench.report.reporting import rebuild, verdicts_from_run

SUITE = {
    "name": "ladder", "seeds": 2, "budget": {"steps": [10, 20, 40]},
    "eval": {"samples": 200, "every": 2, "curve_samples": 100, "plot_samples": 20},
    "datasets": {"ring": {}},
    "objectives": {"ns": {"type": "nonsaturating", "batch_size": 32, "hidden": [16], "critic_hidden": [16]},
                   "gmmn": {"batch_size": 32, "hidden": [16]}},
    "metrics": ["modes"], "reporters": ["markdown"], "execution": {"workers": 1},
}
KEYS = ["dataset", "objective", "seed", "metric"]
TIMED = ["eval_time_s"]  # a clock: the one output that differs between runs


def suite_of(budget, **changes):
    return parse_suite({**copy.deepcopy(SUITE), "budget": budget, **changes}, default_registry(), source="s.yaml")


def scores(records: pd.DataFrame) -> pd.DataFrame:
    kept = records[~records.metric.isin(TIMED)]
    return kept.sort_values(KEYS).reset_index(drop=True)[KEYS + ["value"]]


def test_every_rung_scores_as_a_training_stopped_there_and_the_tables_are_the_top_rungs(tmp_path):
    shared = run(suite_of({"steps": [10, 20, 40]}), out=tmp_path / "shared")
    retrained = run(suite_of({"steps": [10, 20, 40], "retrain": True}), out=tmp_path / "retrained")
    single = run(suite_of({"steps": 40}), out=tmp_path / "single")
    assert not (shared.failed_jobs or retrained.failed_jobs or single.failed_jobs)
    every = shared.report.rung_records
    assert sorted(set(every.rung)) == [0, 1, 2] and set(every[every.objective == "(data)"].rung) == {2}
    assert len(set(every.cell)) == 2 + 2 * 2 * 3  # the reference's seeds, then every rung of every model
    for rung in range(3):  # one training scored on the way == a training of that budget alone (constant lr)
        pd.testing.assert_frame_equal(scores(every[every.rung == rung]),
                                      scores(retrained.report.rung_records.query("rung == @rung")))
    pd.testing.assert_frame_equal(scores(shared.records), scores(single.records))  # the tables: the top rung
    means = [s.summary[~s.summary.metric.isin(TIMED)][["dataset", "objective", "metric", "mean"]].reset_index(drop=True)
             for s in (shared, single)]
    pd.testing.assert_frame_equal(*means)
    assert (shared.records.rung == 2).all() and (single.records.rung == 0).all()
    written = pd.read_csv(tmp_path / "shared" / "records.csv")
    assert sorted(set(written.rung)) == [0, 1, 2] and len(written) == len(every)
    verdicts = verdicts_from_run(tmp_path / "shared")  # from records.csv: the top rung's
    assert len(verdicts.summary) == len(shared.summary)
    lower = [json.loads(p.read_text()) for p in (tmp_path / "shared" / "cells").glob("*.json")]
    steps = {d["rung"]: d["config"]["budget"] for d in lower if d["objective"] == "ns"}
    assert steps == {0: {"steps": 10}, 1: {"steps": 20}, 2: {"steps": 40}}
    assert all(d["curves"] == [] for d in lower if d["rung"] < 2)  # the training's curves: the top rung's


def test_a_single_budget_keeps_its_cell_keys_and_records(tiny):
    tiny["datasets"] = {"ring": {}}
    cells = [c for job in plan(parse_suite(tiny, default_registry(), source="s.yaml"), default_registry())
             for c in job.cells]
    assert all(c.rung == 0 and not c.lower and "ladder" not in c.config for c in cells)
    assert {c.config["steps"] for c in cells} == {0, 30}  # the key cells had before ladders


def test_a_ladder_resumes_the_missing_rungs_and_reports_again(tmp_path):
    suite = suite_of({"steps": [10, 20, 40]})
    first = run(suite, out=tmp_path / "r")
    cells = tmp_path / "r" / "cells"
    records = (tmp_path / "r" / "records.csv").read_text()
    again = run(suite, out=tmp_path / "r")
    assert again.skipped_cells == 2 + 2 * 2 and not again.failed_jobs  # the top cells (and their rungs) all there
    lower = next(p for p in cells.glob("*.json") if json.loads(p.read_text())["rung"] == 0)
    lower.unlink()
    resumed = run(suite, out=tmp_path / "r")
    assert lower.exists() and resumed.skipped_cells == 2 + 2 * 2 - 1
    pd.testing.assert_frame_equal(scores(resumed.report.rung_records), scores(first.report.rung_records))
    report, problems = rebuild(tmp_path / "r", default_registry())
    assert not problems and (tmp_path / "r" / "records.csv").read_text().count("\n") == records.count("\n")
    pd.testing.assert_frame_equal(scores(report.records), scores(first.records))


def test_compare_runs_compares_ladders_at_their_top_rung(tmp_path):
    outcome = run(suite_of({"steps": [10, 20]}), out=tmp_path / "a")
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    table = compare_runs(tmp_path / "a", tmp_path / "b", default_registry()).table
    quality = table[table.kind == "quality"]
    assert set(quality.objective) == {"(data)", "ns", "gmmn"} and (quality.n_base == 2).all()  # seeds, not rungs
    top = outcome.records.groupby(["objective", "metric"])["value"].mean()
    assert all(top[o, m] == b for o, m, b in zip(quality.objective, quality.metric, quality.base))


def test_an_objective_whose_training_depends_on_its_budget_retrains_every_rung(tiny):
    tiny["datasets"] = {"ring": {}}
    del tiny["steps"]
    suite = parse_suite({**tiny, "budget": {"steps": [10, 20]}}, default_registry(), source="s.yaml")
    spec = suite.objectives[0]
    assert not retrains(suite, spec)
    scheduled = dataclasses.replace(spec.config, lr_schedule="cosine")  # decays over the budget
    assert scheduled.budget_dependent and retrains(suite, type(spec)(spec.kind, spec.label, spec.type, scheduled))
    jobs = plan(suite, default_registry())
    assert all(len(c.lower) == 1 for j in jobs if j.objective for c in j.cells)
    retrained = plan(parse_suite({**tiny, "budget": {"steps": [10, 20], "retrain": True}}, default_registry(),
                                 source="s.yaml"), default_registry())
    budgets = sorted({(j.suite.budget.amount, c.rung) for j in retrained if j.objective for c in j.cells})
    assert budgets == [(10, 0), (20, 1)]


def test_bad_ladders_are_one_line_and_nothing_trains(write_suite, tmp_path, capsys):
    for budget, where in (({"steps": [20, 10]}, "budget.steps[1]: a ladder's rungs must increase"),
                          ({"flops": [1.0e9, 2.0e9], "steps": [10, 20]}, "budget: expected one unit"),
                          ({"flops": [1.0e3, 1.0e10]}, "budget.flops[0]: objective 'gmmn' on 'ring': one training "
                                                       "step takes")):
        raw = {**copy.deepcopy(SUITE), "budget": budget}
        code, _, err = invoke(["run", str(write_suite(raw)), "--results", str(tmp_path / "results"), "-q"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and where in err, err
        assert "more than the lowest rung of 1e+03" in err or "flops[0]" not in where
        assert not (tmp_path / "results").exists()


def test_rows_that_train_alike_get_every_rung(tmp_path):
    """Two labels of one setting train once; two samplers of one training are scored at every rung."""
    net = {"batch_size": 16, "hidden": [16]}
    objectives = {"a": {"type": "gmmn", **net}, "b": {"type": "gmmn", **net},
                  "euler-4": {"type": "flow", "sampling_steps": 4, **net},
                  "euler-8": {"type": "flow", "sampling_steps": 8, **net}}
    trained = []
    outcome = run(suite_of({"steps": [4, 8]}, objectives=objectives, metrics=["modes"], reporters=[]),
                  out=tmp_path / "r", progress=trained.append)
    assert not outcome.failed_jobs and sum(trained) == 2 * 8 * 2  # one gmmn and one flow stack, 8 steps, 2 seeds
    every = outcome.report.rung_records
    assert set(map(tuple, every[["objective", "rung"]].drop_duplicates().to_numpy())) == \
        {(o, r) for o in objectives for r in (0, 1)} | {("(data)", 1)}
    pd.testing.assert_frame_equal(scores(every[every.objective == "a"]).drop(columns="objective"),
                                  scores(every[every.objective == "b"]).drop(columns="objective"))


def test_a_search_on_a_ladder_selects_on_the_rung_it_names_and_scores_every_rung(tmp_path):
    objectives = {"gmmn": {"batch_size": 16, "hidden": [16], "search": {"lr": [1e-2]}}}
    search = {"trials": 2, "seeds": 1, "select": {"metric": "high_quality_pct", "rung": 0}}
    outcome = run(suite_of({"steps": [4, 8]}, objectives=objectives, search=search, reporters=[]), out=tmp_path / "r")
    assert not outcome.failed_jobs
    cells = [json.loads(p.read_text()) for p in (tmp_path / "r" / "cells").glob("*.json")]
    trials = [c for c in cells if "trial" in c["config"]]
    assert len(trials) == 2 and all(c["config"]["steps"] == 4 for c in trials)  # trained to rung 0 alone
    assert sorted(set(outcome.report.rung_records.query("objective == 'gmmn'").rung)) == [0, 1]
    assert len(outcome.report.trials) == 2 and outcome.report.chosen


def test_the_html_report_names_a_ladders_rungs():
    assert describe_budget({"budget": {"flops": [1.0e9, 1.0e10], "retrain": False}}) == \
        "1e+10 training FLOPs per model (each objective trains until it has spent them); scored at 2 rungs: 1e+09, 1e+10"


def test_a_ladder_that_retrains_says_so_with_its_cost(tmp_path):
    """An objective whose learning rate decays over the budget trains every rung from scratch; the
    plan warns once, before training, naming it and the cost beside one training to the top rung."""
    from benchbench.plan.ladder import RetrainWarning, warn_retrains

    registry = default_registry()
    raw = {"name": "ladder", "seeds": 1, "budget": {"steps": [10, 30, 60]}, "datasets": {"ring": {}},
           "objectives": {"flow": {"lr_schedule": "cosine"}, "gmmn": {}}, "metrics": ["modes"]}
    suite = parse_suite(raw, registry, source="ladder.yaml")
    with pytest.warns(RetrainWarning) as caught:
        lines = warn_retrains(suite)
    assert len(lines) == len(caught) == 1
    assert lines[0] == ("ladder.yaml: objectives.flow: lr_schedule cosine decays over the budget, so each of the 3 "
                        "rungs trains from scratch: 1.67x the training of one run to the top rung")
    single = parse_suite({**raw, "budget": {"steps": 60}}, registry, source="ladder.yaml")
    assert warn_retrains(single) == []
