"""A job fails alone whatever its plugin does to the process running it: a worker killed (as the OOM
killer does) loses only its job, which is tried once more; a job that hangs is ended by
``execution.job_timeout`` and named in a stall warning; a plugin calling ``os._exit`` or
``sys.exit`` in the run's own process (``workers: 1``) fails its own job. The hostile plugins are
installed as a distribution, so that spawned workers load them as they would a user's."""

from __future__ import annotations

import sys
import textwrap

import pytest

from benchbench import hookimpl, parse_suite, registry_with, run
from benchbench.engines import workers
from benchbench.registry.components import _installed_registry, default_registry

HOSTILE = textwrap.dedent("""
    import os, signal, time
    from pathlib import Path
    from benchbench import hookimpl
    from benchbench_plugins.objectives.gan import NonSaturating

    class AlwaysKilled(NonSaturating):
        name = "always-killed"

        def generator_loss(self, critic, real, fake):
            os.kill(os.getpid(), signal.SIGKILL)  # what the OOM killer does

    class KilledOnce(NonSaturating):
        name = "killed-once"

        def generator_loss(self, critic, real, fake):
            marker = Path(os.environ["HOSTILE_MARKERS"]) / "killed-once"
            if not marker.exists():
                marker.write_text("x")
                os.kill(os.getpid(), signal.SIGKILL)
            return super().generator_loss(critic, real, fake)

    class Hangs(NonSaturating):
        name = "hangs"

        def generator_loss(self, critic, real, fake):
            time.sleep(3600)

    @hookimpl
    def benchbench_objectives():
        return [AlwaysKilled, KilledOnce, Hangs]
""")

SMALL = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """The plugins above installed as distribution hostile-plugins 0.1, for this process and its workers."""
    site = tmp_path / "site"
    dist = site / "hostile_plugins-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: hostile-plugins\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[benchbench]\nhostile = hostile_module\n")
    (site / "hostile_module.py").write_text(HOSTILE)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("HOSTILE_MARKERS", str(tmp_path))
    monkeypatch.delenv("BENCHBENCH_PLUGINS", raising=False)
    _installed_registry.cache_clear()
    yield default_registry()
    _installed_registry.cache_clear()
    sys.modules.pop("hostile_module", None)


def hostile_suite(tiny, registry, objectives, **execution):
    tiny.update(steps=2, seeds=1, datasets={"ring": {}}, metrics=[], reporters=[],
                objectives={name: SMALL for name in objectives}, execution={"workers": 2, **execution})
    tiny["eval"].update(every=0)
    return parse_suite(tiny, registry, source="hostile")


@pytest.mark.slow
def test_a_killed_worker_fails_only_its_job_which_is_tried_once_more(hostile, tiny, tmp_path):
    suite = hostile_suite(tiny, hostile, ["always-killed", "killed-once", "nonsaturating"])
    outcome = run(suite, out=tmp_path / "r", registry=hostile)
    assert outcome.failed_jobs == ["ring/always-killed (seeds 0): its worker process died twice (killed by SIGKILL: "
                                   "likely out of memory (the kernel's OOM killer; see dmesg) or killed by hand); "
                                   "the other jobs ran"]
    trained = set(outcome.records.objective)
    assert trained == {"killed-once", "nonsaturating"}  # killed once, then trained in a fresh worker
    assert (tmp_path / "killed-once").exists()


@pytest.mark.slow
def test_a_hung_job_is_named_then_ended_by_the_job_timeout_alone(hostile, tiny, tmp_path, capsys):
    suite = hostile_suite(tiny, hostile, ["hangs", "nonsaturating"], job_timeout=8)
    outcome = run(suite, out=tmp_path / "r", registry=hostile)
    assert outcome.failed_jobs == ["ring/hangs (seeds 0): still running after execution.job_timeout (8 s): stopped "
                                   "(its worker process ended), the other jobs ran"]
    assert set(outcome.records.objective) == {"nonsaturating"}
    err = capsys.readouterr().err
    assert "warning: ring/hangs (seeds 0): no training step reported for 4 s" in err, err  # half the timeout


@pytest.mark.slow
def test_workers_stay_warm_across_a_runs_phases(hostile, tiny):
    """Two calls of one engine (a search's selection and final phases) use the same worker processes."""
    from benchbench.engines.local import LocalEngine
    from benchbench.plan.cells import plan
    suite = hostile_suite(tiny, hostile, ["nonsaturating"])
    engine, done = LocalEngine(), []
    try:
        engine.execute(plan(suite, hostile), hostile, lambda job, outcome: done.append(outcome))
        first = {w.process.pid for w in engine.pool.workers}
        engine.execute(plan(suite, hostile), hostile, lambda job, outcome: done.append(outcome))
        assert {w.process.pid for w in engine.pool.workers} == first and len(first) == 2
    finally:
        engine.close()
    assert len(done) == 4 and not any(isinstance(o, BaseException) for o in done)
    assert engine.pool is None


# ---- in the run's own process (workers: 1, or plugins that are not installed) ----------------------

EXITS = {"os-exit": lambda: __import__("os")._exit(3), "sys-exit": lambda: sys.exit(3)}


def in_process(tiny, objectives, **execution):
    from benchbench_plugins.objectives.gan import NonSaturating

    def exiting(name, how):
        def generator_loss(self, critic, real, fake):
            how()
        return type(name, (NonSaturating,), {"name": name, "generator_loss": generator_loss})

    classes = [exiting(name, how) for name, how in EXITS.items()]

    def sleeps(self, critic, real, fake):
        import time
        time.sleep(3600)

    classes.append(type("Sleeps", (NonSaturating,), {"name": "sleeps", "generator_loss": sleeps}))
    plugin = type("Exits", (), {"benchbench_objectives": staticmethod(hookimpl(lambda: classes))})
    registry = registry_with([("exits", plugin)])
    tiny.update(steps=2, seeds=1, datasets={"ring": {}}, metrics=[], reporters=[],
                objectives={name: SMALL for name in objectives}, execution={"workers": 1, **execution})
    tiny["eval"].update(every=0)
    return parse_suite(tiny, registry, source="in-process"), registry


def test_a_plugin_that_exits_the_runs_own_process_fails_its_job_alone(tiny, tmp_path):
    suite, registry = in_process(tiny, ["os-exit", "sys-exit", "nonsaturating"])
    outcome = run(suite, out=tmp_path / "r", registry=registry)
    assert outcome.failed_jobs == [
        "ring/os-exit (seeds 0): PluginExit: a plugin called os._exit(3) in the run's own process; the job stopped "
        "there and the other jobs ran (with workers >= 2 it would have ended only its worker)",
        "ring/sys-exit (seeds 0): PluginExit: a plugin called sys.exit(3) in the run's own process; the job stopped "
        "there and the other jobs ran"]
    assert set(outcome.records.objective) == {"nonsaturating"}
    import os
    assert os._exit.__module__ == "posix"  # given back


def test_a_hung_job_in_the_runs_own_process_is_ended_by_the_job_timeout(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(workers, "STALL_WARNING_S", 0.5)
    suite, registry = in_process(tiny, ["sleeps", "nonsaturating"], job_timeout=2)
    outcome = run(suite, out=tmp_path / "r", registry=registry)
    assert outcome.failed_jobs == ["ring/sleeps (seeds 0): still running after execution.job_timeout (2 s): stopped "
                                   "(its worker process ended), the other jobs ran"]
    assert set(outcome.records.objective) == {"nonsaturating"}
    assert "warning: ring/sleeps (seeds 0): no training step reported for " in capsys.readouterr().err
