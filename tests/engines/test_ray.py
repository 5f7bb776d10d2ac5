"""The Ray engine (``--engine ray``): one task per job on a real local Ray cluster of 2 CPUs, started
once per test session the way ``--engine ray`` without an address starts one (with one simulated
GPU, so that GPU placement can be checked on any machine). Its results equal a local run's; a
re-run or ``--resume`` completes the missing cells and counts each cell once, however often its
outcome arrives; worker deaths are retried; Ctrl-C cancels the running tasks and keeps finished
cells. Without Ray installed the local engine never imports it and ``--engine ray`` says how to
install it."""

import _thread
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from clirun import invoke

from benchbench import ConfigError, hookimpl, parse_suite, registry_with, run
from benchbench.registry.entry_points import RESTRICT_VARIABLE
from benchbench_plugins.datasets.mixtures import Ring
from benchbench_plugins.objectives.gan import NonSaturating

pytestmark = pytest.mark.slow  # spawns processes (pip, Ray, killed runs)

TIMED = {"train_time_s", "model_steps_per_s", "samples_per_s", "peak_memory_mb", "gflop_per_s", "eval_time_s"}
SMALL = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}


@pytest.fixture(scope="session")
def cluster():
    """The local Ray cluster this test process is connected to: 2 CPUs and one simulated GPU."""
    pytest.importorskip("ray")
    import ray

    from benchbench.engines.ray_engine import RayEngine

    def cli_handler(signum, frame):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        patch.setenv("RAY_OVERRIDE_RESOURCES", json.dumps({"GPU": 1, "object_store_memory": 200 * 1024 ** 2}))
        previous = signal.signal(signal.SIGTERM, cli_handler)
        engine = RayEngine()
        engine.connect(num_cpus=2)  # as `benchbench run SUITE --engine ray --workers 2`
        sigterm_kept = signal.getsignal(signal.SIGTERM) is cli_handler
        signal.signal(signal.SIGTERM, previous)
    yield SimpleNamespace(address=ray.get_runtime_context().gcs_address, started=engine.owns_connection,
                          sigterm_kept=sigterm_kept)
    engine.close()


@pytest.fixture
def tiny(tiny):
    """On the CPU: ``auto`` would pick the cluster's (simulated) GPU."""
    return {**tiny, "device": "cpu"}


def comparable(records: pd.DataFrame) -> pd.Series:
    """Values by (cell key, metric), without the timings, which differ from run to run."""
    records = records[~records.metric.isin(TIMED)]
    assert not records.duplicated(["cell", "metric"]).any(), "one record per cell and metric"
    return records.set_index(["cell", "metric"])["value"].sort_index()


def test_without_an_address_ray_starts_a_local_cluster(cluster):
    import ray

    assert cluster.started, "RayEngine.connect should have started (and own) the local cluster"
    assert ray.cluster_resources()["CPU"] == 2, "--workers N (here 2) sets the local cluster's CPUs"
    assert cluster.sigterm_kept, "ray.init replaces the SIGTERM handler; the CLI's must be put back"


def test_a_new_process_on_the_cluster_gives_the_results_of_a_local_run(cluster, tiny, write_suite, tmp_path):
    tiny["reporters"] = ["markdown"]  # the plots take longer than training
    suite, out = write_suite(tiny), tmp_path / "ray"
    process = subprocess.Popen([sys.executable, "-m", "benchbench", "run", str(suite), "--engine", "ray",
                                "--address", cluster.address, "--out", str(out), "-q"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        local = run(suite, out=tmp_path / "local")  # meanwhile
    finally:
        stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert stdout.strip().endswith(str(out))
    on_ray = pd.read_csv(out / "records.csv")
    assert len(on_ray.cell.unique()) == 2 * 4 * 2  # 2 datasets x ((data) + 3 objectives) x 2 seeds
    pd.testing.assert_series_equal(comparable(on_ray), comparable(local.records), check_exact=False,
                                   atol=1e-5, rtol=0)
    summary = pd.read_csv(out / "summary.csv")
    summary, expected = (s[~s.metric.isin(TIMED)].reset_index(drop=True) for s in (summary, local.summary))
    pd.testing.assert_frame_equal(summary[["dataset", "objective", "metric", "n"]],
                                  expected[["dataset", "objective", "metric", "n"]], check_dtype=False)
    pd.testing.assert_series_equal(summary["mean"], expected["mean"].astype(float), check_exact=False, atol=1e-5,
                                   rtol=0)
    assert (out / "summary.md").is_file()
    environment = json.loads((out / "environment.json").read_text())
    assert environment["device"] == "cpu on a Ray cluster (2 CPUs, 1 GPUs)"
    engine = environment["engine"]
    assert engine["name"] == "ray" and engine["address"] == cluster.address and engine["nodes"] == 1
    assert engine["resources"]["CPU"] == 2 and engine["gpus_per_task"] == 0


def test_resume_completes_missing_cells_and_counts_each_cell_once(cluster, tiny, write_suite, tmp_path, capsys):
    tiny.update(datasets={"ring": {}}, metrics=["modes", "mmd"], reporters=[])
    del tiny["objectives"]["nonsaturating"]
    suite, results = write_suite(tiny), tmp_path / "results"
    first = run(suite, results_root=results, engine="ray")
    assert not first.failed_jobs and len(first.records.cell.unique()) == 6
    by_objective = first.records.drop_duplicates("cell").set_index(["objective", "seed"]).cell
    lost = [by_objective[("gmmn", 0)], by_objective[("gmmn", 1)], by_objective[("minimax", 1)]]
    for key in lost:  # a whole job and half of another: as if the driver had stopped early
        (first.directory / "cells" / f"{key}.json").unlink()
    code, stdout, stderr = invoke(["run", str(suite), "--engine", "ray", "--resume", "--results", str(results)],
                                  capsys)
    assert code == 0, stderr
    assert f"3 cells were already in {first.directory} and not run again" in stdout
    second = pd.read_csv(first.directory / "records.csv")
    pd.testing.assert_series_equal(comparable(second), comparable(first.records))
    third = run(suite, resume=True, results_root=results, engine="ray")  # every result read from its one file
    assert third.directory == first.directory and third.skipped_cells == 6 and len(third.records) == len(first.records)
    assert len(list((first.directory / "cells").glob("*.json"))) == 6


def test_an_outcome_delivered_twice_counts_once(cluster, tiny, write_suite, tmp_path, monkeypatch):
    from benchbench.engines.ray_engine import RayEngine

    tiny.update(datasets={"ring": {}}, metrics=["modes"], reporters=[])
    tiny["objectives"] = {"gmmn": tiny["objectives"]["gmmn"]}
    execute, delivered = RayEngine.execute, []

    def every_task_twice(self, jobs, registry, on_done, progress=None):
        def counted(job, outcome):
            delivered.append(job.key)
            on_done(job, outcome)
        execute(self, [job for job in jobs for _ in range(2)], registry, counted, progress)

    monkeypatch.setattr(RayEngine, "execute", every_task_twice)
    outcome = run(write_suite(tiny), out=tmp_path / "run", engine="ray")
    assert len(delivered) == 4 and len(set(delivered)) == 2, "(data) and gmmn, each run and delivered twice"
    assert not outcome.failed_jobs and len(outcome.problems) == len(set(outcome.problems))
    comparable(outcome.records)  # one record per cell and metric
    assert len(outcome.records.cell.unique()) == 4 == len(list((tmp_path / "run" / "cells").glob("*.json")))
    modes = outcome.summary[outcome.summary.metric == "modes_captured"]
    assert len(modes) == 2 and (modes.n == 2).all(), "each seed counted once in the summary"


def test_a_dead_worker_is_retried_and_a_raising_job_fails_alone(cluster, tiny, tmp_path):
    registry, crashed, attempts = faulty_registry(tmp_path)
    raw = {**tiny, "datasets": {"ring": {}}, "metrics": ["modes"], "reporters": [],
           "objectives": {"crash-once": SMALL, "broken": SMALL}}
    outcome = run(parse_suite(raw, registry, source="tiny"), out=tmp_path / "run", registry=registry, engine="ray")
    assert crashed.exists(), "the first attempt should have killed its worker"
    assert len(outcome.records[outcome.records.objective == "crash-once"].cell.unique()) == 2
    assert outcome.failed_jobs == ["ring/broken (seeds 0, 1): ValueError: broken on purpose"]
    assert "RemoteTraceback" in outcome.tracebacks[0] and "in __init__" in outcome.tracebacks[0]  # from the task
    assert attempts.read_text() == "x", "an exception in the job is not retried"
    comparable(outcome.records)  # one record per cell and metric


def faulty_registry(tmp_path):
    """Objectives defined here, so they travel to the workers by value with the registry."""
    crashed, attempts, driver = tmp_path / "crashed", tmp_path / "attempts", os.getpid()

    class CrashOnce(NonSaturating):
        name = "crash-once"

        def __init__(self, config, data):
            super().__init__(config, data)
            if os.getpid() != driver and not crashed.exists():
                crashed.write_text("")
                os._exit(1)  # the worker process dies, as on a lost node or the OOM killer

    class Broken(NonSaturating):
        name = "broken"

        def __init__(self, config, data):
            super().__init__(config, data)
            if os.getpid() != driver:  # the tasks' attempts (on the driver, the suite's check builds it and passes)
                with attempts.open("a") as f:
                    f.write("x")
                raise ValueError("broken on purpose")

    return registry_with([("faulty", plugin_of(CrashOnce, Broken))]), crashed, attempts


def plugin_of(*classes, hook="benchbench_objectives"):
    return type("Plugin", (), {hook: staticmethod(hookimpl(lambda: list(classes)))})


def test_ctrl_c_keeps_finished_cells_and_resume_completes_the_rest(cluster, tiny, tmp_path):
    import ray

    stalled, driver = tmp_path / "stall", os.getpid()
    stalled.write_text("")

    class Stall(NonSaturating):
        name = "stall"

        def __init__(self, config, data):  # in a worker: wait until the test lets it go
            super().__init__(config, data)
            deadline = time.monotonic() + 120
            while os.getpid() != driver and stalled.exists() and time.monotonic() < deadline:
                time.sleep(0.05)

    registry = registry_with([("stall", plugin_of(Stall))])
    raw = {**tiny, "datasets": {"ring": {}}, "metrics": ["modes"], "reporters": [], "objectives": {"stall": SMALL}}
    suite, results = parse_suite(raw, registry, source="tiny"), tmp_path / "results"

    def press_ctrl_c_when_the_reference_is_saved():
        deadline = time.monotonic() + 120
        while len(list(results.glob("tiny/*/cells/*.json"))) < 2:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c_when_the_reference_is_saved, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run(suite, results_root=results, registry=registry, engine="ray")
    (directory,) = results.glob("tiny/*")
    assert len(list((directory / "cells").glob("*.json"))) == 2, "the (data) cells, saved before Ctrl-C"
    deadline = time.monotonic() + 15
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2, "the stalled task should have been cancelled"

    stalled.unlink()
    resumed = run(suite, resume=True, results_root=results, registry=registry, engine="ray")
    assert resumed.directory == directory and resumed.skipped_cells == 2 and not resumed.failed_jobs
    assert len(resumed.records.cell.unique()) == 4
    comparable(resumed.records)


def test_tasks_ask_for_one_cpu_or_a_share_of_a_gpu(cluster, tiny, tmp_path, monkeypatch):
    """A dataset that reports, from inside its task, what Ray gave the task (then fails the job)."""
    driver = os.getpid()

    class Probe(Ring):
        name = "probe"

        def __init__(self, config):
            super().__init__(config)
            if os.getpid() != driver:
                import ray
                raise RuntimeError(json.dumps({
                    "resources": ray.get_runtime_context().get_assigned_resources(),
                    "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "threads": torch.get_num_threads(),
                    "plugins": os.environ.get(RESTRICT_VARIABLE)}))

    registry = registry_with([("probe", plugin_of(Probe, hook="benchbench_datasets"))])
    raw = {**tiny, "datasets": {"probe": {}}, "metrics": ["modes"], "reporters": [],
           "objectives": {"gmmn": {"batch_size": 16, "hidden": [8]}}, "eval": {**tiny["eval"], "reference": False}}
    suite = parse_suite(raw, registry, source="tiny")

    def seen(out, **options):
        outcome = run(suite, out=tmp_path / out, registry=registry, engine="ray", **options)
        (failure,) = outcome.failed_jobs
        environment = json.loads((tmp_path / out / "environment.json").read_text())
        return json.loads(failure.split("RuntimeError: ", 1)[1]), environment

    on_cpu, environment = seen("cpu")
    assert on_cpu["resources"] == {"CPU": 1} and on_cpu["threads"] == 1
    assert environment["device"].startswith("cpu on") and environment["engine"]["gpus_per_task"] == 0

    monkeypatch.setenv(RESTRICT_VARIABLE, "probe,gmmn,modes")  # --plugins: the workers load the same plugins
    on_gpu, environment = seen("auto", device="auto")  # auto: the cluster has a GPU, this machine need not
    assert on_gpu["resources"] == {"CPU": 1, "GPU": 0.25} and on_gpu["visible"] == "0" and on_gpu["threads"] == 1
    assert on_gpu["plugins"] == "probe,gmmn,modes"
    assert environment["device"] == "cuda on a Ray cluster (2 CPUs, 1 GPUs)"
    assert environment["engine"]["gpus_per_task"] == 0.25

    half, environment = seen("half", device="cuda", gpus_per_task=0.5)
    assert half["resources"] == {"CPU": 1, "GPU": 0.5} and environment["engine"]["gpus_per_task"] == 0.5


@pytest.mark.parametrize("change, where, message", [
    ({"datasets": {"mnist": {"root": "{empty}", "download": False}}}, "datasets.mnist", "downloads are switched off"),
    ({"budget": {"flops": 1000}}, "budget.flops", "one training step takes"),
    ({"objectives": {"untrained": SMALL}}, "objectives.untrained", "network 'extra' is trained by no update"),
    ({"objectives": {"nonsaturating": {**SMALL, "batch_size": 10**11}}}, "objectives.nonsaturating.batch_size",
     "one member training with batch_size 100,000,000,000 on ring takes"),
])
def test_the_suite_is_checked_on_the_driver_before_any_task_starts(cluster, tiny, tmp_path, capsys, monkeypatch,
                                                                 change, where, message):
    """The one check of every engine, against the cluster's resources: one line, exit 2, no task run."""
    import ray

    from benchbench import Network

    class Untrained(NonSaturating):
        name = "untrained"

        def networks(self, dataset):
            return (*super().networks(dataset), Network("extra", (2,), (1,)))

    registry = registry_with([("extras", plugin_of(Untrained))])
    monkeypatch.setattr("benchbench.runner.default_registry", lambda: registry)
    tasks = []
    monkeypatch.setattr(ray, "remote", lambda *a, **k: tasks.append(a) or pytest.fail("a task was started"))
    raw = {**{k: v for k, v in tiny.items() if k != "steps" or "budget" not in change}, "datasets": {"ring": {}},
           "metrics": [], "reporters": [], "objectives": {"nonsaturating": SMALL}, **change}
    raw = json.loads(json.dumps(raw).replace("{empty}", str(tmp_path / "empty")))
    suite = tmp_path / "suite.yaml"
    suite.write_text(json.dumps(raw))
    code, _, stderr = invoke(["run", str(suite), "--engine", "ray", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and stderr.count("\n") == 1 and f"{suite}: {where}" in stderr and message in stderr, stderr
    assert not (tmp_path / "r").exists() and not tasks


def test_the_cluster_resources_bound_the_memory_check(cluster):
    from benchbench.engines.ray_engine import RayEngine

    engine = RayEngine()
    assert engine.resources("cpu").free_bytes > 0  # the largest node's memory for tasks
    assert engine.resources("cuda").free_bytes is None  # a GPU's memory is not known on the driver


def test_cuda_needs_gpus_in_the_cluster(cluster, tiny, write_suite, tmp_path, monkeypatch):
    import ray

    from benchbench.engines.ray_engine import RayEngine

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})  # this cluster without its GPU
    assert RayEngine().resolve_device("auto", "device") == "cpu"
    tiny["device"] = "cuda"  # accepted by the file check even where this machine has no GPU
    with pytest.raises(ConfigError, match="'cuda' asked for, but the Ray cluster has no GPUs"):
        run(write_suite(tiny), out=tmp_path / "run", engine="ray")
    with pytest.raises(ConfigError, match="--device: 'cuda:1': with --engine ray use cuda"):
        run(write_suite(tiny), out=tmp_path / "run", engine="ray", device="cuda:1")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_tasks_share_a_gpu(cluster, tiny, write_suite, tmp_path):
    tiny.update(device="cuda", reporters=[])
    suite = write_suite(tiny)
    on_ray = run(suite, out=tmp_path / "ray", engine="ray", gpus_per_task=0.5)
    local = run(suite, out=tmp_path / "local")
    assert not on_ray.failed_jobs
    pd.testing.assert_series_equal(comparable(on_ray.records), comparable(local.records), check_exact=False,
                                   atol=1e-5, rtol=0)


def test_ray_address_comes_from_the_environment(cluster, monkeypatch):
    from benchbench.engines.ray_engine import RayEngine

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert RayEngine().address == "10.0.0.1:6379" and RayEngine("other:6379").address == "other:6379"


@pytest.mark.parametrize("text, message", [
    ("steps: 5\nsteps: 6\n", "line 2: invalid YAML: duplicate key 'steps' (first at line 1)"),
    ("device: gpu\n", "device: got 'gpu'; allowed: auto, cpu, cuda"),
    ("device: cuda:0\n", "device: 'cuda:0': with --engine ray use cuda"),
    ("stepz: 5\n", "stepz: unknown key"),
])
def test_the_suite_file_is_checked_as_locally(text, message, tmp_path, capsys):
    pytest.importorskip("ray")
    suite = tmp_path / "bad.yaml"
    suite.write_text(text + "datasets: {ring: {}}\nobjectives: {gmmn: {}}\n")
    code, _, stderr = invoke(["run", str(suite), "--engine", "ray", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr
    assert not (tmp_path / "r").exists()


# Without Ray: these run whether or not it is installed.

def test_a_local_run_does_not_import_ray(tiny, write_suite, tmp_path):
    tiny.update(steps=5, datasets={"ring": {}}, metrics=["modes"], reporters=[])
    tiny["objectives"] = {"gmmn": tiny["objectives"]["gmmn"]}
    code = ("import sys; from benchbench.cli import main\n"
            "try: main(sys.argv[1:])\n"
            "except SystemExit as e: assert not e.code, e.code\n"
            "assert 'ray' not in sys.modules, 'ray was imported'")
    result = subprocess.run([sys.executable, "-c", code, "run", str(write_suite(tiny)), "--out", str(tmp_path / "r"),
                             "-q"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "r" / "records.csv").is_file()


def test_without_ray_the_cli_says_how_to_install_it(tiny, write_suite, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if it were not installed
    code, _, stderr = invoke(["run", str(write_suite(tiny)), "--engine", "ray", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert "pip install 'benchbench[ray]'" in stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args, message", [
    (["--address", "10.0.0.1:6379"], "error: --address: only with --engine ray"),
    (["--gpus-per-task", "0.5"], "error: --gpus-per-task: only with --engine ray"),
    (["--engine", "dask"], "Invalid value for '--engine'"),
])
def test_ray_options_need_the_ray_engine(tiny, write_suite, tmp_path, capsys, args, message):
    code, _, stderr = invoke(["run", str(write_suite(tiny)), "--out", str(tmp_path / "r"), *args], capsys)
    assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr


def test_a_search_runs_its_trials_and_its_final_phase_as_ray_tasks(cluster, tmp_path):
    path = Path(__file__).parents[1] / "e2e" / "test_search.py"
    spec = importlib.util.spec_from_file_location("e2e_test_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # its SEARCH suite, whether or not tests/e2e is on sys.path
    SEARCH = module.SEARCH
    from benchbench import default_registry

    raw = {**SEARCH, "device": "cpu", "steps": 5, "search": {**SEARCH["search"], "trials": 3, "seeds": 1}}
    suite = parse_suite(raw, default_registry(), source="search")
    on_ray = run(suite, out=tmp_path / "ray", engine="ray")
    local = run(suite, out=tmp_path / "local")
    trials = [pd.read_csv(path / "trials.csv") for path in (on_ray.directory, local.directory)]
    pd.testing.assert_frame_equal(*trials, check_exact=False, atol=1e-5, rtol=0)
    pd.testing.assert_series_equal(comparable(on_ray.records), comparable(local.records), check_exact=False,
                                   atol=1e-5, rtol=0)
    assert run(suite, out=tmp_path / "ray", engine="ray").skipped_cells == len(list((tmp_path / "ray" / "cells")
                                                                                     .glob("*.json")))
