"""Speed of a run's reports phase: every built-in reporter writing the reports of one fixed small run
directory (2 datasets, 3 objectives and the data reference, 2 seeds, a few curve points), with the
figures drawn in this process alone and across every core this process may use, side by side
(the files are the same). On suites/mixture.yaml the plots reporter was most of the reports phase
(issue 28): see README "Where the time goes"."""

import dataclasses

import pytest

from benchbench import default_registry, parse_suite, run
from benchbench.report.reporting import load_run, suite_of, write_reports

SUITE = {
    "name": "reports-bench", "seeds": 2, "steps": 20, "device": "cpu",
    "eval": {"samples": 300, "every": 10, "curve_samples": 100, "plot_samples": 100},
    "datasets": {"ring": {}, "grid": {}},
    "objectives": {"nonsaturating": {"batch_size": 32, "hidden": [16], "critic_hidden": [16]},
                   "gmmn": {"batch_size": 32, "hidden": [16]},
                   "flow": {"batch_size": 32, "hidden": [16], "sampling_steps": 4}},
    "reporters": [], "execution": {"workers": 1},
}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run directory, trained once for every benchmark of this module."""
    out = tmp_path_factory.mktemp("reports") / "run"
    run(parse_suite(SUITE, default_registry(), source="benchmark"), out=out)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 0], ids=["one process", "every core"])
def test_every_reporter_of_a_small_run(benchmark, finished, processes):
    registry = default_registry()
    suite = suite_of(finished, registry, "all")
    reporters = tuple(dataclasses.replace(spec, config=dataclasses.replace(spec.config, processes=processes))
                      if spec.type == "plots" else spec for spec in suite.reporters)
    report = load_run(finished, registry, suite)
    benchmark.group = "reports phase"
    benchmark.extra_info.update(impl=f"processes {processes}")
    failed = benchmark.pedantic(write_reports, args=(report, reporters, registry), rounds=2, iterations=1)
    assert failed == []
    assert len(list((finished / "plots").glob("*.png"))) == 9 and (finished / "report.html").is_file()
