"""A run across budget rungs, on synthetic records with hand-checked values: verdicts and ranks per
rung, crossovers, compute to a target, the anytime area, still-improving curves, the Pareto set."""

import math

import numpy as np
import pandas as pd
import pytest

from benchbench import Output
from benchbench.stats.frontier import frontier, mark_improving, pareto_set, sampling
from benchbench.stats.improving import seed_gain, still_improving
from benchbench.stats.rungs import crossovers, rung_verdicts, top_rung, with_rungs
from benchbench.stats.summary import summarize
from benchbench.stats.targets import (
    FIRST_RUNG,
    INTERPOLATED,
    NOT_REACHED,
    anytime,
    flops_to_reach,
    median_interval,
    target_table,
    to_target,
    to_target_seeds,
)

OUTPUTS = {o.name: o for o in (
    Output("jsd", "divergence", "lower", range=(0.0, math.log(2))),
    Output("high_quality_pct", "quality", "higher", range=(0.0, 100.0)),
    Output("train_flops", "throughput", "none", scope="job"),
    Output("flops_per_sample", "throughput", "lower", scope="job"),
    Output("nfe", "throughput", "none", scope="job"),
)}
FLOPS = (1e9, 1e10, 1e11)
SEEDS = range(5)
# jsd at each rung: b leads at the first rung, a at the two others (a crossover between rungs 0 and 1)
JSD = {"a": (0.5, 0.2, 0.03), "b": (0.3, 0.25, 0.2)}
PCT = {"a": (10.0, 50.0, 95.0), "b": (40.0, 60.0, 70.0)}
COST = {"a": (1e4, 1), "b": (1e3, 1)}  # flops per sample, nfe


def ladder_records(rungs=(0, 1, 2), with_rung=True) -> pd.DataFrame:
    rows = []
    for objective in ("(data)", "a", "b"):
        for seed in SEEDS:
            cell = f"ring/{objective}/{seed}"
            for rung in rungs:
                scores = {"jsd": 0.02, "high_quality_pct": 99.0} if objective == "(data)" else {
                    "jsd": JSD[objective][rung] + 0.001 * seed, "high_quality_pct": PCT[objective][rung] + seed,
                    "train_flops": FLOPS[rung], "flops_per_sample": COST[objective][0], "nfe": COST[objective][1]}
                rows += [(cell, f"ring/{objective}", "ring", objective, seed, m, v, "", rung)
                         for m, v in scores.items()]
    frame = pd.DataFrame(rows, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value", "note",
                                        "rung"])
    return frame if with_rung else frame.drop(columns="rung")


def ladder_curves() -> pd.DataFrame:
    """a's jsd falls steadily to the end (slope -(0.004 + 0.0001 seed) per step); b's is flat but noisy."""
    rows = []
    for seed in SEEDS:
        for step in range(0, 101, 10):
            a = 0.5 - (0.004 + 0.0001 * seed) * step
            b = 0.2 + 0.01 * ((step * 7 + seed * 3) % 5 - 2)
            rows += [(f"ring/a/{seed}", "ring", "a", seed, step, "jsd", a),
                     (f"ring/b/{seed}", "ring", "b", seed, step, "jsd", b),
                     (f"ring/a/{seed}", "ring", "a", seed, step, "generator_loss", 1.0)]
    return pd.DataFrame(rows, columns=["cell", "dataset", "objective", "seed", "step", "metric", "value"])


def test_a_frame_without_rungs_is_rung_zero_and_the_top_rung_is_the_largest():
    records = ladder_records(with_rung=False)
    assert set(with_rungs(records)["rung"]) == {0}
    top = top_rung(ladder_records())
    assert "rung" not in top and set(top.loc[top["metric"] == "train_flops", "value"]) == {1e11}


def test_verdicts_at_every_rung_are_those_of_a_run_of_that_rung_alone():
    records = ladder_records()
    by_rung, compared = rung_verdicts(records, OUTPUTS)
    assert sorted(by_rung["rung"].unique()) == [0, 1, 2]
    first = records[records["rung"] == 0].drop(columns="rung")
    alone = summarize(first, OUTPUTS).set_index(["objective", "metric"])
    mine = by_rung[by_rung["rung"] == 0].set_index(["objective", "metric"])
    assert mine.loc[("b", "jsd"), "verdict"] == alone.loc[("b", "jsd"), "verdict"] == "best"
    assert mine.loc[("a", "jsd"), "verdict"] == "worse"  # 5 vs 5 seeds, fully separated: p = 2 / C(10, 5)
    assert mine.loc[("a", "jsd"), "mean"] == pytest.approx(0.502)
    assert by_rung[(by_rung["rung"] == 2) & (by_rung["objective"] == "a")]["train_flops"].iloc[0] == 1e11
    jsd = compared[compared["metric"] == "jsd"].set_index("rung")
    assert list(jsd["winner"]) == ["b", "a", "a"]
    assert jsd.loc[0, "p_holm"] == pytest.approx(2 / math.comb(10, 5))  # one pair per (dataset, metric, rung)


def test_crossovers_list_the_pairs_whose_significant_order_flips():
    records = ladder_records()
    found = frontier(records, ladder_curves(), OUTPUTS)
    jsd = found.crossovers[found.crossovers["metric"] == "jsd"]
    assert len(jsd) == 1
    row = jsd.iloc[0]
    assert (row.rung_before, row.winner_before, row.rung_after, row.winner_after) == (0, "b", 1, "a")
    assert (row.flops_before, row.flops_after) == (1e9, 1e10)
    pct = found.crossovers[found.crossovers["metric"] == "high_quality_pct"]  # b leads at 0 and 1, a at 2
    assert list(zip(pct["rung_before"], pct["rung_after"])) == [(1, 2)]
    ties = found.comparisons.assign(significant=False)
    assert crossovers(ties).empty


def test_ranks_by_rung_follow_the_means():
    found = frontier(ladder_records(), ladder_curves(), OUTPUTS)
    ranks = found.ranks[found.ranks["metric"] == "jsd"].set_index(["rung", "objective"])
    assert ranks.loc[(0, "b"), "rank"] == 1 and ranks.loc[(0, "a"), "rank"] == 2
    assert ranks.loc[(2, "a"), "rank"] == 1 and ranks.loc[(2, "a"), "verdict"] == "best"
    assert ranks.loc[(2, "b"), "train_flops"] == 1e11


def test_flops_to_reach_interpolates_on_log_flops():
    flops = np.array([1e9, 1e10, 1e11])
    assert flops_to_reach(flops, np.array([0.5, 0.2, 0.03]), 0.04, "lower") == pytest.approx(
        (10 ** (10 + 0.16 / 0.17), INTERPOLATED))
    assert flops_to_reach(flops, np.array([0.5, 0.2, 0.1]), 0.04, "lower") == (math.inf, NOT_REACHED)
    assert flops_to_reach(flops, np.array([0.01, 0.2, 0.1]), 0.04, "lower") == (1e9, FIRST_RUNG)
    assert flops_to_reach(flops, np.array([10, 80, 95]), 90, "higher") == pytest.approx(
        (10 ** (10 + 10 / 15), INTERPOLATED))


def test_default_targets_are_twice_the_data_divergence_and_the_suite_overrides():
    by_rung, _ = rung_verdicts(ladder_records(), OUTPUTS)
    table = target_table(by_rung, OUTPUTS).set_index("metric")
    assert list(table.index) == ["jsd"] and table.loc["jsd", "target"] == pytest.approx(0.04)  # 2 x 0.02
    assert table.loc["jsd", "source"] == "2x (data)"
    given = target_table(by_rung, OUTPUTS, {"jsd": 0.1, "high_quality_pct": 90}).set_index("metric")
    assert given.loc["jsd", "target"] == 0.1 and given.loc["high_quality_pct", "source"] == "suite"


def test_compute_to_target_is_a_median_over_seeds_and_not_reached_is_a_result():
    records = ladder_records()
    targets = target_table(rung_verdicts(records, OUTPUTS)[0], OUTPUTS, {"high_quality_pct": 90})
    seeds = to_target_seeds(records, OUTPUTS, targets)
    found = to_target(seeds, targets).set_index(["objective", "metric"])
    a = found.loc[("a", "jsd")]  # seed s: 0.2 + 0.001 s at 1e10, 0.03 + 0.001 s at 1e11; the median seed is 2
    assert a["median_flops"] == pytest.approx(10 ** (10 + 0.162 / 0.17))
    assert a["status"] == "reached" and a["reached"] == 5 and a["n"] == 5
    assert a["ci_level"] == pytest.approx(1 - 2 / 32)  # 5 seeds: the range's coverage, below 95%
    assert a["low"] == pytest.approx(10 ** (10 + 0.16 / 0.17)) and a["high"] == pytest.approx(10 ** (10 + 0.164 / 0.17))
    b = found.loc[("b", "jsd")]
    assert b["status"] == NOT_REACHED and b["median_flops"] == math.inf and b["reached"] == 0
    pct = found.loc[("a", "high_quality_pct")]  # 50 + s at 1e10, 95 + s at 1e11: the median seed meets 90 at 38/45
    assert pct["median_flops"] == pytest.approx(10 ** (10 + 38 / 45)) and pct["source"] == "suite"


def test_median_interval_uses_order_statistics_and_keeps_infinity():
    median, low, high, level = median_interval(np.arange(1.0, 9.0))
    assert (median, low, high, level) == (4.5, 1.0, 8.0, 0.95)
    median, low, high, _ = median_interval(np.array([1, 2, math.inf, math.inf, math.inf, 5, 6, 7]))
    assert (median, low, high) == (6.5, 1.0, math.inf)
    median, low, high, level = median_interval(np.array([3.0, 1.0, 2.0]))
    assert (median, low, high, level) == (2.0, 1.0, 3.0, 0.75)
    assert math.isnan(median_interval(np.array([2.0]))[1])


def test_anytime_area_is_the_mean_score_over_log_compute():
    found = anytime(ladder_records(), OUTPUTS).set_index(["objective", "metric"])
    # trapezoids over log10 FLOPs 9..11: a (0.5 + 0.2) / 2 + (0.2 + 0.03) / 2 = 0.465 over 2 decades,
    # + 0.001 x the mean seed
    assert found.loc[("a", "jsd"), "mean"] == pytest.approx(0.465 / 2 + 0.002)
    assert found.loc[("b", "jsd"), "mean"] == pytest.approx(0.5 / 2 + 0.002)
    assert found.loc[("a", "jsd"), "n"] == 5 and found.loc[("a", "jsd"), "log10_flops_low"] == pytest.approx(9)
    assert anytime(ladder_records(rungs=(2,)), OUTPUTS).empty  # one rung: no area


def test_still_improving_is_a_test_over_seeds_of_the_last_quarter():
    gain, start, end = seed_gain(np.arange(0, 101, 10), 0.5 - 0.004 * np.arange(0, 101, 10))
    assert (start, end) == (70, 100) and gain == pytest.approx(-0.004 * 30)  # from the last point before step 75
    found = still_improving(ladder_curves(), OUTPUTS).set_index(["objective", "metric"])
    assert found.loc[("a", "jsd"), "improving"] and found.loc[("a", "jsd"), "gain"] == pytest.approx(0.03 * 4.2)
    assert not found.loc[("b", "jsd"), "improving"]
    assert ("a", "generator_loss") not in found.index  # no direction: not judged
    one_seed = still_improving(ladder_curves().query("seed == 0"), OUTPUTS).set_index("objective")
    assert math.isnan(one_seed.loc["a", "p_value"]) and not one_seed.loc["a", "improving"]
    summary = mark_improving(summarize(top_rung(ladder_records()), OUTPUTS), found.reset_index())
    marked = summary.set_index(["objective", "metric"])["still_improving"]
    assert marked[("a", "jsd")] and not marked[("b", "jsd")] and not marked[("a", "high_quality_pct")]


def test_pareto_set_keeps_what_nothing_beats_on_both_quality_and_cost():
    quality, cost = np.array([0.1, 0.2, 0.3, 0.15, math.nan]), np.array([10, 1, 5, 10, 1])
    assert list(pareto_set(quality, cost, "lower")) == [True, True, False, False, False]
    assert list(pareto_set(-quality, cost, "higher")) == [True, True, False, False, False]
    summary = summarize(top_rung(ladder_records()), OUTPUTS)
    found = sampling(summary, OUTPUTS).set_index(["metric", "objective"])
    assert found.loc[("jsd", "a"), "pareto"] and found.loc[("jsd", "b"), "pareto"]  # a better, b cheaper
    assert found.loc[("jsd", "b"), "flops_per_sample"] == 1e3 and found.loc[("jsd", "a"), "nfe"] == 1


def test_a_single_rung_gives_a_sensible_frontier():
    found = frontier(ladder_records(rungs=(2,), with_rung=False), ladder_curves(), OUTPUTS)
    assert found.rungs == 1 and set(found.by_rung["rung"]) == {0}
    assert found.crossovers.empty and found.anytime.empty
    statuses = found.to_target.set_index(["objective", "metric"])["status"]
    assert statuses[("a", "jsd")] == FIRST_RUNG and statuses[("b", "jsd")] == NOT_REACHED
    assert not found.sampling.empty and found.improving["improving"].any()
