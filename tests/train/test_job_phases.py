"""A job's phases: exclusive wall and CPU seconds, parts named under their phase, nothing outside a recording."""

import time

import torch

from benchbench import default_registry, parse_suite
from benchbench.plan.cells import plan
from benchbench.train.phases import OTHER, Phases, part, phase, recording
from benchbench.train.timing import Stopwatch
from benchbench.train.trainer import run_job


def busy(seconds: float) -> None:
    """Spin until both the wall clock and this process's CPU time advanced by ``seconds`` (the process's CPU
    time counts every thread, so it may run ahead of the wall clock)."""
    end_cpu, end_wall = time.process_time() + seconds, time.perf_counter() + seconds
    while time.process_time() < end_cpu or time.perf_counter() < end_wall:
        pass


def test_a_phase_leaves_out_the_phases_and_parts_inside_it():
    start = time.perf_counter()
    with recording() as phases:
        with phase("a"):
            time.sleep(0.05)
            with part("x"):
                busy(0.1)
                with phase("b"):  # a phase inside a part: its own name, subtracted from the part
                    time.sleep(0.05)
    took = time.perf_counter() - start
    times = phases.times
    assert set(times) == {"a", "a/x", "b"}
    assert times["a"][0] >= 0.05 and times["a/x"][0] >= 0.1 and times["b"][0] >= 0.05
    assert abs(sum(wall for wall, _, _ in times.values()) - took) < 0.01  # exclusive: they add up
    assert times["a/x"][1] >= 0.09 and times["b"][1] < 0.03 and times["a"][1] < 0.03  # CPU: busy in x alone


def test_nothing_is_recorded_outside_a_recording_and_an_exception_closes_what_it_left_open():
    with phase("a"), part("x"):
        pass
    phases = Phases()
    try:
        with phases.timed("outer"):
            phases.start("left open")
            raise ValueError
    except ValueError:
        pass
    assert set(phases.times) == {"outer"} and phases.current() is None  # its time counts as the outer's


def test_a_stopwatch_with_a_phase_times_each_interval_as_that_phase():
    start = time.perf_counter()
    with recording() as phases:
        clock = Stopwatch(torch.device("cpu"), "training")
        for _ in range(3):
            clock.start()
            time.sleep(0.01)
            clock.stop()
            time.sleep(0.02)  # outside the phase
    wall, _, count = phases.times["training"]
    assert count == 3 and clock.seconds <= wall < time.perf_counter() - start - 0.06


def test_a_jobs_phases_add_up_to_its_time_and_name_each_metric(tiny):
    tiny.update(seeds=2, datasets={"ring": {}}, metrics=["kde-divergence", "mmd"])
    tiny["objectives"] = {"gmmn": tiny["objectives"]["gmmn"]}
    suite = parse_suite(tiny, default_registry(), source="tiny")
    reference, job = plan(suite, default_registry())
    start = time.perf_counter()
    outcome = run_job(job, default_registry())
    took = time.perf_counter() - start
    names = set(outcome.phases)
    assert {OTHER, "training", "curve points", "curve points/sampling", "curve points/metric kde-divergence",
            "curve points/metric mmd", "final evaluation/sampling", "final evaluation/metric mmd"} <= names
    assert outcome.phases["curve points"][2] == 4  # steps 0, 10, 20, 30
    assert "worker start" not in names  # in this process: no worker started for it
    assert 0.9 * took <= sum(wall for wall, _, _ in outcome.phases.values()) <= took
    assert time.time() - 2 * took <= outcome.started <= time.time() - 0.5 * took
    assert set(run_job(reference, default_registry()).phases) >= {"data reference/metric mmd"}
