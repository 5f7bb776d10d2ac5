"""Selection that survives noise: two selection seeds per trial unless a suite asks otherwise (one
only with a warning), the choice on the mean over them, each trial's spread in trials.csv, and a
winner's-curse warning in summary.md and report.html when the chosen trial's final score falls
outside the range of its selection scores."""

import copy
import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from benchbench import default_registry, parse_suite, run
from benchbench.config.search import SELECTION_SEED_BASE
from benchbench.plan.trials import SPREAD_COLUMNS, select, winners_curse

SEARCH = {
    "name": "noisy-search",
    "seeds": 3,
    "steps": 6,
    "eval": {"samples": 120, "every": 0, "curve_samples": 60, "plot_samples": 10},
    "datasets": {"ring": {}},
    "objectives": {"gmmn": {"batch_size": 16, "hidden": [8], "search": {"lr": [1e-3, 1e-2]}}},
    "metrics": ["kde-divergence"],
    "reporters": ["markdown", "html"],
    "execution": {"workers": 1},
    "search": {"trials": 3, "select": {"metric": "jsd"}},
}


def suite(raw=None, **search):
    raw = copy.deepcopy(raw or SEARCH)
    raw["search"].update(search)
    return parse_suite(raw, default_registry(), source="s.yaml")


def test_two_selection_seeds_by_default_one_only_with_a_warning():
    assert suite().search.seeds == (SELECTION_SEED_BASE, SELECTION_SEED_BASE + 1)
    assert suite().search.warning is None and suite(seeds=3).search.warning is None
    assert len(suite(seeds=5).search.seeds) == 5
    one = suite(seeds=1).search
    assert one.seeds == (SELECTION_SEED_BASE,)
    assert "s.yaml: search.seeds" in one.warning and "1 selection seed" in one.warning
    assert "1 selection seed" in suite(seeds=[SELECTION_SEED_BASE + 7]).search.warning


def documents(values):
    """Trial cells of gmmn on ring: {trial: [jsd per selection seed]}."""
    return [{"dataset": "ring", "objective": "gmmn", "seed": SELECTION_SEED_BASE + i, "cell": f"c{t}-{i}",
             "config": {"trial": t}, "scores": {"jsd": v}} for t, seeds in values.items() for i, v in enumerate(seeds)]


def test_the_choice_is_on_the_mean_and_trials_csv_records_each_trials_spread():
    # trial 0 has the best single seed (0.05) but the worst mean; trial 2 the best mean (JSD: lower is better)
    values = {0: [0.05, 0.65], 1: [0.4, 0.5], 2: [0.3, 0.32]}
    selection = select(suite(), default_registry(), documents(values))
    assert selection.chosen["ring", "gmmn"] == 2
    trials = selection.trials
    assert list(trials.columns) == ["dataset", "objective", "trial", "lr", "seed", "metric", "value",
                                    *SPREAD_COLUMNS, "selected", "cell"]
    for t, seeds in values.items():
        rows = trials[trials["trial"] == t]
        assert len(rows) == 2
        assert rows["score_mean"].tolist() == pytest.approx([np.mean(seeds)] * 2)
        assert rows["score_std"].tolist() == pytest.approx([np.std(seeds, ddof=1)] * 2)
        assert (rows["score_min"] == min(seeds)).all() and (rows["score_max"] == max(seeds)).all()
        assert (rows["score_n"] == 2).all()


def test_a_diverged_seed_counts_out_of_the_spread():
    selection = select(suite(), default_registry(), documents({0: [0.2, math.nan], 1: [0.5, 0.6], 2: [0.7, 0.8]}))
    first = selection.trials[selection.trials["trial"] == 0].iloc[0]
    assert first["score_n"] == 1 and first["score_mean"] == 0.2 and math.isnan(first["score_std"])


def summary_of(mean):
    return pd.DataFrame({"dataset": ["ring"], "objective": ["gmmn"], "metric": ["jsd"], "mean": [mean], "n": [3]})


def test_the_winners_curse_is_named_when_the_final_score_leaves_the_selection_range():
    selection = select(suite(), default_registry(), documents({0: [0.5, 0.6], 1: [0.4, 0.5], 2: [0.3, 0.32]}))
    assert winners_curse(selection, summary_of(0.31), "jsd") == {}
    assert winners_curse(selection, summary_of(0.30), "jsd") == {}  # the range is closed
    worse = winners_curse(selection, summary_of(0.45), "jsd")[("ring", "gmmn")]
    assert "winner's curse" in worse and "0.45" in worse and "0.3–0.32" in worse and "worse" in worse
    better = winners_curse(selection, summary_of(0.1), "jsd")[("ring", "gmmn")]
    assert "better" in better
    assert winners_curse(selection, summary_of(math.nan), "jsd") == {}


def test_a_search_run_reports_its_spread_and_any_winners_curse(tmp_path):
    outcome = run(suite(), out=tmp_path / "run")
    trials = pd.read_csv(outcome.directory / "trials.csv")
    assert set(SPREAD_COLUMNS) <= set(trials.columns) and (trials["score_n"] == 2).all()
    assert len(trials) == 3 * 2  # trials x the two default selection seeds
    chosen = trials[trials["selected"]]
    low, high = chosen["score_min"].iloc[0], chosen["score_max"].iloc[0]
    final = outcome.summary.set_index(["objective", "metric"]).loc[("gmmn", "jsd"), "mean"]
    cursed = not low <= final <= high
    summary_md = (outcome.directory / "summary.md").read_text()
    report_html = (outcome.directory / "report.html").read_text()
    assert outcome.report.selection_warnings == ({("ring", "gmmn"): outcome.report.selection_warnings.get(
        ("ring", "gmmn"))} if cursed else {})
    assert ("winner's curse" in summary_md) == cursed and ("winner&#x27;s curse" in report_html) == cursed


def test_reporters_show_the_winners_curse(tmp_path):
    from benchbench_plugins.reporters import html, tables

    outcome = run(suite(), out=tmp_path / "run")
    warning = "winner's curse: gmmn on ring: jsd 0.9 on the final seeds, worse than 0.3–0.32 on its selection seeds"
    report = dataclasses.replace(outcome.report, selection_warnings={("ring", "gmmn"): warning})
    assert f"⚠ {warning}" in tables.render(report)
    assert "winner&#x27;s curse: gmmn on ring" in html.render(report)


def test_one_selection_seed_runs_with_a_warning_line_from_the_cli(tmp_path, capsys):
    import yaml
    from clirun import invoke

    raw = copy.deepcopy(SEARCH)
    raw["search"].update(seeds=1)
    path = tmp_path / "one-seed.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, _, stderr = invoke(["run", str(path), "--out", str(tmp_path / "run"), "--quiet"], capsys)
    assert code == 0
    warnings = [line for line in stderr.splitlines() if "search.seeds" in line]
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {path}: search.seeds: 1 selection seed per trial")
    assert (pd.read_csv(tmp_path / "run" / "trials.csv")["score_n"] == 1).all()
    assert "1 selection seed" in (tmp_path / "run" / "report.html").read_text()  # among the run's problems
