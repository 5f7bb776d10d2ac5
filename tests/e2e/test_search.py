"""Equal-budget search: suite blocks, trials drawn, stacked trials exact, selection without leakage,
trials.csv / budget.csv / plots, and one-line errors for bad search blocks."""

import copy
import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from clirun import invoke

from benchbench import ConfigError, default_registry, parse_suite, run
from benchbench.config.search import SELECTION_SEED_BASE, draw_trials
from benchbench.plan.trials import plan_trials, trial_specs
from benchbench.stats.budget import budget_curve, expected_best
from benchbench.train.member_optim import MemberOptimizer

SEARCH = {
    "name": "search",
    "seeds": 2,
    "steps": 15,
    "eval": {"samples": 200, "every": 0, "curve_samples": 100, "plot_samples": 20},
    "datasets": {"ring": {}},
    "objectives": {
        "nonsaturating": {"batch_size": 32, "hidden": [8], "critic_hidden": [8],
                          "search": {"lr": {"loguniform": [1e-4, 1e-2]}, "betas.0": {"uniform": [0, 0.9]},
                                     "critic_steps": [1, 2]}},
        "gmmn": {"batch_size": 32, "hidden": [8],
                 "search": {"lr": {"loguniform": [1e-4, 1e-2]},
                            "scales": {"choice": [[0.1, 1.0], [0.25, 2.0], [0.5]]}}},
    },
    "metrics": ["kde-divergence"],
    "reporters": ["markdown", "plots"],
    "execution": {"workers": 1},
    "search": {"trials": 5, "seed": 3, "seeds": 2, "select": {"metric": "jsd"}},
}


def suite(raw=None, **changes):
    raw = copy.deepcopy(raw or SEARCH)
    raw.update(changes)
    return parse_suite(raw, default_registry(), source="s.yaml")


def documents(directory):
    return {d["cell"]: d for d in (json.loads(p.read_text()) for p in (directory / "cells").glob("*.json"))}


def test_trials_are_drawn_deterministically_trial_0_is_the_default_and_grids_are_visited():
    s = suite()
    specs = trial_specs(s)
    assert len(specs["nonsaturating"]) == len(specs["gmmn"]) == 5  # the same budget for every objective
    default = s.objectives[0].config
    assert specs["nonsaturating"][0].config == default
    drawn = [spec.config for spec in specs["nonsaturating"][1:]]
    assert [c.critic_steps for c in drawn] == [1, 2, 1, 2]
    assert all(1e-4 <= c.lr <= 1e-2 and 0 <= c.betas[0] <= 0.9 and c.betas[1] == default.betas[1] for c in drawn)
    assert trial_specs(suite()) == specs  # deterministic
    again = draw_trials(s.search.space("nonsaturating"), 9, 3, "nonsaturating")
    assert again[:5] == draw_trials(s.search.space("nonsaturating"), 5, 3, "nonsaturating")  # N-independent
    other = suite(search={**SEARCH["search"], "seed": 4})
    assert trial_specs(other)["nonsaturating"][1:] != specs["nonsaturating"][1:]
    assert s.search.seeds == (SELECTION_SEED_BASE, SELECTION_SEED_BASE + 1)
    assert not set(s.search.seeds) & set(s.seeds)


def test_trials_differing_only_in_optimizer_and_per_member_settings_share_a_stack():
    s = suite()
    jobs = plan_trials(s, default_registry())
    by_objective = {}
    for job in jobs:
        by_objective.setdefault(job.objective.label, []).append(job)
    # nonsaturating: k = 1 (trial 0, the default, and trials 1, 3) and k = 2 (trials 2, 4): two stacks
    sizes = sorted(len(j.cells) for j in by_objective["nonsaturating"])
    assert sizes == [4, 6]
    stacked = max(by_objective["nonsaturating"], key=lambda j: len(j.cells))
    assert len({m.lr for m in stacked.members}) == 3 and len({m.betas for m in stacked.members}) == 3
    # gmmn: bandwidth scales are per-member, so its five trials x two seeds are one stack
    assert [len(j.cells) for j in by_objective["gmmn"]] == [10]
    assert len({m.scales for m in by_objective["gmmn"][0].members}) > 1


def test_a_trial_is_the_same_alone_or_stacked_and_the_search_chooses_before_the_final_seeds(tmp_path, capsys):
    stacked = run(suite(), out=tmp_path / "stacked")
    alone = run(suite(execution={"workers": 1, "max_members": 1}), out=tmp_path / "alone")
    a, b = documents(stacked.directory), documents(alone.directory)
    assert set(a) == set(b)
    untimed = lambda scores: {k: v for k, v in scores.items() if k != "eval_time_s"}  # noqa: E731
    for key in a:  # bit for bit: members differing in lr, betas and GMMN scales train as they would alone
        assert untimed(a[key]["scores"]) == untimed(b[key]["scores"]), key
        assert a[key]["curves"] == b[key]["curves"], key

    trials = pd.read_csv(stacked.directory / "trials.csv")
    assert list(trials.columns) == ["dataset", "objective", "trial", "lr", "betas.0", "critic_steps", "scales",
                                    "seed", "metric", "value", "score_mean", "score_std", "score_min", "score_max",
                                    "score_n", "selected", "cell"]
    assert len(trials) == 2 * 5 * 2 and set(trials["seed"]) == set(suite().search.seeds)
    assert trials.equals(pd.read_csv(alone.directory / "trials.csv"))
    # the chosen trial has the best mean selection score (JSD: lower is better)
    for objective, rows in trials.groupby("objective"):
        means = rows.groupby("trial")["value"].mean()
        assert rows.loc[rows["selected"], "trial"].unique().tolist() == [int(means.idxmin())]
    # the final tables hold the suite's own seeds only, trained at the chosen settings
    assert set(stacked.records["seed"]) == {0, 1}
    final = [d for d in a.values() if "trial" not in d["config"] and d["objective"] == "nonsaturating"]
    chosen = int(trials.loc[trials["selected"] & (trials["objective"] == "nonsaturating"), "trial"].iloc[0])
    assert {d["config"]["objective"]["lr"] for d in final} == {trial_specs(suite())["nonsaturating"][chosen].config.lr}
    assert "trial" in (stacked.directory / "summary.md").read_text().split("### ")[0]  # chosen setting shown

    budget = pd.read_csv(stacked.directory / "budget.csv")
    assert list(dict.fromkeys(budget["objective"])) == ["nonsaturating", "gmmn"]  # the suite's order: same colours
    assert len(budget) == 2 * 5 and (budget["expected_best"].diff()[budget["budget"] > 1] <= 1e-12).all()
    assert (stacked.directory / "plots" / "budget-ring.png").stat().st_size > 1000

    again = run(suite(), out=tmp_path / "stacked")  # a re-run trains nothing: trials and finals are done
    assert again.skipped_cells == len(a) and again.records.equals(stacked.records)

    # `benchbench report` reads the resolved suite back (search blocks included) and finds the chosen
    # settings again from the trial cells: the same summary.md, byte for byte
    rebuilt = ("summary.md", "trials.csv", "budget.csv")
    before = {name: (stacked.directory / name).read_bytes() for name in rebuilt}
    for name in (*rebuilt, "plots/budget-ring.png"):
        (stacked.directory / name).unlink()
    code, _, err = invoke(["report", str(stacked.directory), "--reporters", "markdown,plots,latex,html"], capsys)
    assert code == 0, err
    assert {name: (stacked.directory / name).read_bytes() for name in rebuilt} == before
    assert (stacked.directory / "plots" / "budget-ring.png").stat().st_size > 1000
    written = before["summary.md"]
    chosen = next(text for text in written.decode().splitlines() if text.startswith("- nonsaturating: trial"))
    assert "Settings chosen by an equal-budget search: nonsaturating: trial" in \
        (stacked.directory / "summary.tex").read_text()
    page = (stacked.directory / "report.html").read_text()
    assert "Chosen by an equal-budget search" in page and chosen[len("- nonsaturating: "):] in page


def test_member_optimizer_matches_torch_and_each_member_is_exact_whatever_its_neighbours():
    torch.manual_seed(0)
    settings = [(1e-3, (0.5, 0.999)), (3e-3, (0.0, 0.9)), (1e-4, (0.8, 0.99))]
    weights = torch.randn(3, 5, 4)
    grads = [torch.randn(3, 5, 4) for _ in range(4)]

    def train(kind, members, momentum=(0.0, 0.9, 0.5)):
        p = torch.nn.Parameter(weights[members].clone())
        opt = MemberOptimizer([p], kind, [settings[i][0] for i in members], [settings[i][1] for i in members],
                              [momentum[i] for i in members])
        for g in grads:
            p.grad = g[members].clone()
            opt.step()
        return p.detach()

    for kind in ("adam", "sgd", "rmsprop"):
        together = train(kind, [0, 1, 2])
        for i in range(3):
            assert torch.equal(together[i], train(kind, [i])[0]), (kind, i)
    reference = {"adam": lambda p, i: torch.optim.Adam([p], lr=settings[i][0], betas=settings[i][1], foreach=False),
                 "sgd": lambda p, i: torch.optim.SGD([p], lr=settings[i][0], momentum=(0.0, 0.9, 0.5)[i]),
                 "rmsprop": lambda p, i: torch.optim.RMSprop([p], lr=settings[i][0], momentum=(0.0, 0.9, 0.5)[i])}
    for kind, make in reference.items():
        together = train(kind, [0, 1, 2])
        for i in range(3):
            p = torch.nn.Parameter(weights[i].clone())
            opt = make(p, i)
            for g in grads:
                p.grad = g[i].clone()
                opt.step()
            torch.testing.assert_close(together[i], p.detach(), rtol=1e-5, atol=1e-6)


def test_expected_best_is_the_mean_best_over_all_subsets_and_its_interval_covers_it():
    values = [0.3, 0.1, 0.7, 0.4, 0.2]
    for b in range(1, 6):
        subsets = list(itertools.combinations(values, b))
        assert math.isclose(expected_best(values, b, "higher"), np.mean([max(s) for s in subsets]))
        assert math.isclose(expected_best(values, b, "lower"), np.mean([min(s) for s in subsets]))
    assert expected_best(values, 1, "higher") == pytest.approx(np.mean(values))
    assert expected_best(values, 5, "lower") == 0.1
    curve = budget_curve(values + [math.nan], "lower")
    assert list(curve["budget"]) == [1, 2, 3, 4, 5]  # a trial without a score is left out
    assert ((curve["ci95_low"] <= curve["expected_best"] + 1e-12) & (curve["expected_best"] <= curve["ci95_high"]
                                                                      + 1e-12)).all()
    assert budget_curve([0.5, 0.5], "lower")["ci95_low"].isna().all()  # no spread, no interval


BAD = [
    (lambda r: r["objectives"]["gmmn"]["search"].update(critic_lr=[1e-3]), "objectives.gmmn.search.critic_lr",
     "not a setting"),
    (lambda r: r["objectives"]["gmmn"]["search"].update(noise={"uniform": [0, 1]}),
     "objectives.gmmn.search.noise.uniform", "non-numeric"),
    (lambda r: r["objectives"]["gmmn"]["search"].update(lr={"loguniform": [0, 1e-2]}),
     "objectives.gmmn.search.lr.loguniform", "> 0"),
    (lambda r: r["objectives"]["gmmn"]["search"].update(lr={"uniform": [1e-2, 1e-3]}),
     "objectives.gmmn.search.lr.uniform", "low > high"),
    (lambda r: r["objectives"]["gmmn"]["search"].update(batch_size=[8, 16, 32, 64, 128]),
     "objectives.gmmn.search", "unequal budgets"),
    (lambda r: r["search"]["select"].update(metric="fid"), "search.select.metric", "no metric of the suite"),
    (lambda r: r["datasets"].update({"digits": {}}), "search.select.metric", "cannot be computed on dataset"),
    (lambda r: r["search"].update(seeds=[0, 5]), "search.seeds", "also final seeds"),
    (lambda r: r["search"].update(tirals=3), "search.tirals", "unknown key"),
    (lambda r: r["objectives"]["gmmn"]["search"].update({"betas.2": [0.5]}), "objectives.gmmn.search.betas.2",
     "betas.0 .. betas.1"),
]


@pytest.mark.parametrize("break_it, key, words", BAD)
def test_bad_search_blocks_are_one_line_naming_file_and_key_with_exit_2(break_it, key, words, tmp_path, capsys):
    raw = copy.deepcopy(SEARCH)
    break_it(raw)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    code, out, err = invoke(["run", str(path), "--out", str(tmp_path / "out")], capsys)
    assert code == 2, err
    line = err.strip()
    assert "\n" not in line and line.count(f"{path}: {key}") == 1 and words in line, line
    assert not (tmp_path / "out").exists()  # nothing trained, nothing written
    with pytest.raises(ConfigError):
        parse_suite(raw, default_registry(), source=str(path))


def fake_documents(scores):
    """Trial documents as a run directory holds them: {(dataset, trial): value} for gmmn, one seed."""
    return [{"dataset": d, "objective": "gmmn", "seed": SELECTION_SEED_BASE, "cell": f"{d}{t}",
             "config": {"trial": t}, "scores": {"jsd": v}} for (d, t), v in scores.items()]


@pytest.mark.parametrize("mode, chosen", [("each", {"ring": 1, "grid": 2}), ("all", {"ring": 2, "grid": 2}),
                                          ("ring", {"ring": 1, "grid": 1})])
def test_selection_per_dataset_by_mean_rank_or_on_one_dataset(mode, chosen):
    from benchbench.plan.trials import select

    raw = copy.deepcopy(SEARCH)
    raw["datasets"] = {"ring": {}, "grid": {}}
    del raw["objectives"]["nonsaturating"]
    raw["search"] = {**raw["search"], "trials": 4, "select": {"metric": "jsd", "dataset": mode}}
    s = suite(raw)
    # JSD (lower is better): ring ranks 1 < 2 < 3 < 0; grid ranks 2 < 0 < 1, trial 3 diverged (NaN: last)
    values = {("ring", 0): 0.6, ("ring", 1): 0.1, ("ring", 2): 0.2, ("ring", 3): 0.3,
              ("grid", 0): 0.4, ("grid", 1): 0.5, ("grid", 2): 0.05, ("grid", 3): math.nan}
    selection = select(s, default_registry(), fake_documents(values))
    assert {d: selection.chosen[d, "gmmn"] for d in ("ring", "grid")} == chosen
    assert selection.trials["selected"].sum() == 2
    assert "trial 2 of 4" in selection.describe(s)["grid", "gmmn"] or mode == "ring"


def test_final_seeds_given_on_the_command_line_must_not_be_selection_seeds():
    s = suite(search={**SEARCH["search"], "seeds": [7]})
    assert s.with_overrides(seeds=5).seeds == (0, 1, 2, 3, 4)
    with pytest.raises(ConfigError, match="--seeds: selection seeds \\[7\\] are also final seeds"):
        s.with_overrides(seeds=8)
