"""Verdicts: pairwise comparisons, Holm, robust aggregates, tied-best and ranks, against closed
forms, hand-worked values and simulation."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchbench import Output
from benchbench.stats.summary import summarize
from benchbench.stats.verdicts import (
    REFERENCE,
    compare_samples,
    comparisons,
    difference_interval,
    holm,
    min_p_value,
    p_value,
    ranks,
    robust,
)

OUTPUTS = {"score": Output("score", "quality", "higher"), "loss": Output("loss", "divergence", "lower"),
           "kl": Output("kl", "divergence", "lower", heavy_tailed=True), "info": Output("info", "quality", "none"),
           "time": Output("time", "throughput", "lower", scope="job"),
           "diverged": Output("diverged", "training", "lower", summary="sum")}


def records_of(samples: dict[tuple[str, str, str], list[float]]) -> pd.DataFrame:
    """Long-format records from {(dataset, objective, metric): values over seeds}."""
    rows = [(f"{d}/{o}/{s}", f"{d}/{o}", d, o, s, m, v, "") for (d, o, m), values in samples.items()
            for s, v in enumerate(values)]
    return pd.DataFrame(rows, columns=["cell", "job", "dataset", "objective", "seed", "metric", "value", "note"])


def test_identical_samples_are_a_tie():
    found = compare_samples([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "higher")
    assert found["p_improve"] == 0.5 and found["p_value"] == 1.0 and found["diff"] == 0.0
    assert found["diff_low"] < 0 < found["diff_high"]
    assert compare_samples([2.0] * 4, [2.0] * 4, "lower", test="welch")["p_value"] == 1.0


def test_separated_samples_win_with_five_seeds_never_with_three():
    five = compare_samples([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "higher")
    assert five["p_improve"] == five["p_improve_low"] == 1.0
    assert five["p_value"] == pytest.approx(2 / math.comb(10, 5))  # exact Mann-Whitney, the smallest possible
    three = compare_samples([6, 7, 8], [1, 2, 3], "higher")
    assert three["p_improve"] == 1.0 and three["p_value"] == pytest.approx(0.1)
    assert min_p_value(3, 3) == pytest.approx(0.1) and min_p_value(4, 4) == pytest.approx(2 / 70)


def test_direction_follows_better():
    higher = compare_samples([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "higher")
    lower = compare_samples([6, 7, 8, 9, 10], [1, 2, 3, 4, 5], "lower")
    assert higher["diff"] == lower["diff"] == 5.0  # the difference is of means, whatever the direction
    assert higher["p_improve"] == 1.0 and lower["p_improve"] == 0.0
    assert (lower["p_improve_low"], lower["p_improve_high"]) == (0.0, 0.0)
    records = records_of({("d", "a", "loss"): [6, 7, 8, 9, 10], ("d", "b", "loss"): [1, 2, 3, 4, 5],
                          ("d", "a", "score"): [6, 7, 8, 9, 10], ("d", "b", "score"): [1, 2, 3, 4, 5]})
    found = comparisons(records, OUTPUTS).set_index("metric")
    assert found.at["loss", "winner"] == "b" and found.at["score", "winner"] == "a"


def test_probability_of_improvement_is_mann_whitney_u_over_nm():
    rng = np.random.default_rng(1)
    x, y = rng.integers(0, 4, 7).astype(float), rng.integers(0, 4, 6).astype(float)  # with ties
    u = stats.mannwhitneyu(x, y).statistic
    assert compare_samples(x, y, "higher")["p_improve"] == pytest.approx(u / (7 * 6))
    assert compare_samples(x, y, "lower")["p_improve"] == pytest.approx(1 - u / (7 * 6))


def test_welch_p_value_is_scipys():
    x, y = [1.0, 2.5, 3.0, 4.2], [2.0, 5.0, 6.5]
    assert p_value(x, y, "welch") == pytest.approx(stats.ttest_ind(x, y, equal_var=False).pvalue)


def test_holm_on_a_hand_worked_example():
    # sorted: 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    found = holm([0.02, math.nan])
    assert found[0] == pytest.approx(0.02) and math.isnan(found[1])  # NaN is not counted in m


def test_iqm_is_scipys_trim_mean_and_intervals_bracket():
    values = [3.0, -1.0, 8.0, 2.0, 100.0, 4.0, 5.0, 0.5]
    found = robust(values)
    assert found["iqm"] == pytest.approx(stats.trim_mean(values, 0.25))
    assert found["median"] == pytest.approx(np.median(values))
    assert found["iqm_low"] <= found["iqm"] <= found["iqm_high"]
    assert found["median_low"] <= found["median"] <= found["median_high"]
    assert found["iqm_high"] < 100  # the outlier does not drag the interval


def test_bootstrap_is_seeded():
    x, y = [1.0, 3.0, 2.0, 5.0], [2.0, 2.5, 4.0, 1.0]
    assert compare_samples(x, y, "higher", seed=3) == compare_samples(x, y, "higher", seed=3)
    assert compare_samples(x, y, "higher", seed=3) != compare_samples(x, y, "higher", seed=4)


def test_difference_interval_covers_the_truth_95_percent_of_the_time():
    """Percentile bootstrap of a difference of means, 30 vs 30 normal values, 2000 simulated draws
    in one vectorized call: coverage of the true difference (1.0) between 93% and 97%."""
    rng = np.random.default_rng(12)
    draws, n = 2000, 30
    x = rng.normal(1.0, 1.0, (draws, n))
    y = rng.normal(0.0, 2.0, (draws, n))
    low, high = difference_interval(x, y, seed=5)
    coverage = np.mean((low <= 1.0) & (1.0 <= high))
    assert 0.93 <= coverage <= 0.97, coverage


def test_images_suite_situation_is_a_tie():
    """Stacked-digits modes, 3 seeds: 446.7 ± 108.3 (minimax) vs 421.3 ± 218.2 (non-saturating),
    mean ± t-interval half-width; the seeds cannot tell them apart."""
    def three_seeds(mean, half_width):
        sd = half_width / stats.t.ppf(0.975, 2) * math.sqrt(3)
        return [mean - sd, mean, mean + sd]  # sample mean `mean`, sample std `sd`
    minimax, nonsaturating = three_seeds(446.7, 108.3), three_seeds(421.3, 218.2)
    records = records_of({("digits", "minimax", "score"): minimax,
                          ("digits", "nonsaturating", "score"): nonsaturating})
    summary = summarize(records, OUTPUTS)
    assert summary["ci95_high"].sub(summary["ci95_low"]).div(2).round(1).tolist() == [108.3, 218.2]
    found = comparisons(records, OUTPUTS)
    assert found["winner"].tolist() == ["~"] and not found["significant"].any()
    marked = summarize(records, OUTPUTS, found)
    assert marked["tied_best"].all()
    assert set(marked["verdict"]) == {"underpowered"}  # 3 vs 3: Mann-Whitney's p >= 0.1


def test_comparisons_skip_reference_job_sum_and_undirected_outputs():
    samples = {}
    for objective, shift in [(REFERENCE, 0), ("a", 0), ("b", 10), ("c", 20)]:
        for metric in OUTPUTS:
            samples["d", objective, metric] = [shift + s for s in range(5)]
    found = comparisons(records_of(samples), OUTPUTS)
    assert set(found["metric"]) == {"score", "loss", "kl"}
    assert set(zip(found["objective_a"], found["objective_b"])) == {("a", "b"), ("a", "c"), ("b", "c")}
    score = found[found["metric"] == "score"].set_index(["objective_a", "objective_b"])
    assert score.at[("a", "b"), "p_value"] == pytest.approx(2 / 252)
    assert score.at[("a", "b"), "p_holm"] == pytest.approx(3 * 2 / 252)  # Holm: all three equal p, x3
    assert score["significant"].all() and score["can_reach"].all()
    assert score["winner"].tolist() == ["b", "c", "c"]


def test_tied_best_marks_every_objective_not_significantly_worse():
    records = records_of({("d", "a", "score"): [10, 11, 12, 13, 14], ("d", "b", "score"): [9, 10.5, 12, 13, 14],
                          ("d", "c", "score"): [0, 1, 2, 3, 4]})
    found = comparisons(records, OUTPUTS)
    marked = summarize(records, OUTPUTS, found).set_index("objective")
    assert marked["tied_best"].to_dict() == {"a": True, "b": True, "c": False}
    assert marked["verdict"].to_dict() == {"a": "best", "b": "tied", "c": "worse"}


def test_ranks_average_over_datasets():
    # lower is better: on d1 a < b < c, on d2 b < a < c; separated so every resample agrees on d1's order
    records = records_of({("d1", "a", "loss"): [1, 1.1, 1.2], ("d1", "b", "loss"): [5, 5.1, 5.2],
                          ("d1", "c", "loss"): [9, 9.1, 9.2],
                          ("d2", "a", "loss"): [5, 5.1, 5.2], ("d2", "b", "loss"): [1, 1.1, 1.2],
                          ("d2", "c", "loss"): [9, 9.1, 9.2]})
    found = ranks(records, OUTPUTS).set_index("objective")
    assert found["rank"].to_dict() == {"a": 1.5, "b": 1.5, "c": 3.0}
    assert found.loc["c", ["rank_low", "rank_high"]].tolist() == [3.0, 3.0]
    assert (found["datasets"] == 2).all()
    overlapping = records_of({("d1", "a", "score"): [1, 5, 9], ("d1", "b", "score"): [2, 6, 8]})
    found = ranks(overlapping, OUTPUTS).set_index("objective")
    assert found.loc["b", "rank"] == 1.0 and found.loc["b", "rank_high"] == 2.0  # resamples may swap them


def test_verdicts_from_run_reproduce_what_the_run_wrote(tiny, tmp_path):
    import io

    from benchbench import run, verdicts_from_run

    tiny.update(seeds=2, steps=10, datasets={"ring": {}}, metrics=["modes", "mmd"], reporters=["markdown", "verdicts"],
                objectives={k: tiny["objectives"][k] for k in ("minimax", "gmmn")})
    outcome = run(tiny_suite(tiny, tmp_path), out=tmp_path / "run")
    found = verdicts_from_run(outcome.directory)

    def as_written(frame):
        return pd.read_csv(io.StringIO(frame.to_csv(index=False)))

    for name, frame, computed in [("comparisons", outcome.comparisons, found.comparisons),
                                  ("ranks", outcome.ranks, found.ranks), ("summary", outcome.summary, found.summary)]:
        written = pd.read_csv(outcome.directory / f"{name}.csv")
        pd.testing.assert_frame_equal(written, as_written(computed))
        pd.testing.assert_frame_equal(written, as_written(frame))
    assert set(found.comparisons["metric"]) == {"modes_captured", "high_quality_pct", "mode_kl", "mmd2"}
    assert (found.comparisons[["objective_a", "objective_b"]].drop_duplicates().values.tolist()
            == [["gmmn", "minimax"]])  # the suite's order (safe_dump sorts the keys)
    assert not found.comparisons["can_reach"].any()  # 2 vs 2 seeds: Mann-Whitney's p >= 1/3
    assert (outcome.directory / "plots" / "probability_of_improvement.png").read_bytes()[:4] == b"\x89PNG"
    assert "No verdict for" in (outcome.directory / "summary.md").read_text()
    assert outcome.report.comparisons is outcome.comparisons


def tiny_suite(raw, tmp_path):
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_verdicts_from_a_directory_without_records_is_a_config_error(tmp_path):
    from benchbench import ConfigError, verdicts_from_run

    with pytest.raises(ConfigError, match="records.csv"):
        verdicts_from_run(tmp_path)


def test_welch_comparisons_reach_significance_with_three_seeds():
    """Welch's t has no floor on its p-value: well-separated 3-seed samples can win, unlike Mann-Whitney."""
    records = records_of({("d", "a", "loss"): [1.0, 1.1, 1.2], ("d", "b", "loss"): [5.0, 5.1, 5.2]})
    welch = comparisons(records, OUTPUTS, test="welch").iloc[0]
    assert welch["p_value"] == pytest.approx(stats.ttest_ind([1.0, 1.1, 1.2], [5.0, 5.1, 5.2], equal_var=False).pvalue)
    assert welch["significant"] and welch["winner"] == "a" and welch["can_reach"]
    mann_whitney = comparisons(records, OUTPUTS).iloc[0]
    assert mann_whitney["winner"] == "~" and not mann_whitney["can_reach"]


SAMPLES = st.lists(st.integers(-5, 5).map(float), min_size=2, max_size=6)


@settings(max_examples=40, deadline=None)
@given(SAMPLES, SAMPLES)
def test_swapping_the_samples_mirrors_the_verdict(x, y):
    forward, backward = compare_samples(x, y, "higher"), compare_samples(y, x, "higher")
    assert forward["p_improve"] + backward["p_improve"] == pytest.approx(1.0)
    assert forward["p_value"] == pytest.approx(backward["p_value"])
    assert forward["diff"] == pytest.approx(-backward["diff"])
    assert 0 <= forward["p_improve_low"] <= forward["p_improve_high"] <= 1


@given(st.lists(st.floats(0, 1), min_size=1, max_size=12))
def test_holm_never_lowers_a_p_value_and_keeps_their_order(p):
    adjusted = holm(p)
    assert np.all(adjusted >= np.asarray(p) - 1e-12) and np.all(adjusted <= 1)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-12)
