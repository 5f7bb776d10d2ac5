"""The Ray engine (``--engine ray``): one task per job on a real local Ray cluster, started once per
test session. Its results equal a local run's; worker deaths are retried; Ctrl-C cancels the
running tasks and keeps finished cells; a re-run completes the rest. Without Ray installed the
local engine never imports it and ``--engine ray`` says how to install it."""

import _thread
import os
import signal
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import torch

from benchbench import ConfigError, hookimpl, parse_suite, registry_with, run
from benchbench.cli import main
from benchbench_plugins.objectives.gan import NonSaturating

TIMED = {"train_time_s", "model_steps_per_s", "samples_per_s", "peak_memory_mb", "gflop_per_s", "eval_time_s"}
SMALL = {"batch_size": 16, "hidden": [8], "critic_hidden": [8]}


@pytest.fixture(scope="session")
def cluster():
    """The address of a 2-CPU Ray cluster that this test process is connected to."""
    ray = pytest.importorskip("ray")
    handler = signal.getsignal(signal.SIGTERM)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=200 * 1024 ** 2)
    signal.signal(signal.SIGTERM, handler)  # ray.init replaces it
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def invoke(args, capsys):
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def comparable(records: pd.DataFrame) -> pd.Series:
    """Values by (cell key, metric), without the timings, which differ from run to run."""
    records = records[~records.metric.isin(TIMED)]
    assert not records.duplicated(["cell", "metric"]).any(), "one record per cell and metric"
    return records.set_index(["cell", "metric"])["value"].sort_index()


def test_cli_run_on_ray_equals_a_local_run(cluster, tiny, write_suite, tmp_path, capsys):
    tiny["reporters"] = ["markdown"]  # the plots take longer than training
    suite = write_suite(tiny)
    code, stdout, stderr = invoke(["run", str(suite), "--engine", "ray", "--address", cluster,
                                   "--out", str(tmp_path / "ray")], capsys)
    assert code == 0, stderr
    assert "ring - quality (mean ± 95% CI over seeds)" in stdout
    local = run(suite, out=tmp_path / "local")
    on_ray = pd.read_csv(tmp_path / "ray" / "records.csv")
    assert len(on_ray.cell.unique()) == 2 * 4 * 2  # 2 datasets x ((data) + 3 objectives) x 2 seeds
    pd.testing.assert_series_equal(comparable(on_ray), comparable(local.records), check_exact=False,
                                   atol=1e-5, rtol=0)
    assert (tmp_path / "ray" / "summary.md").is_file()


def test_a_new_process_connects_by_address(cluster, tiny, write_suite, tmp_path):
    tiny.update(datasets={"ring": {}}, metrics=["modes"], reporters=["markdown"])
    tiny["objectives"] = {"gmmn": tiny["objectives"]["gmmn"]}
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "benchbench", "run", str(write_suite(tiny)), "--engine", "ray",
                             "--address", cluster, "--out", str(out), "-q"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith(str(out))
    assert len(pd.read_csv(out / "records.csv").cell.unique()) == 2 * 2


def test_a_rerun_completes_missing_cells_and_counts_each_cell_once(cluster, tiny, write_suite, tmp_path):
    tiny.update(datasets={"ring": {}}, metrics=["modes", "mmd"], reporters=[])
    suite, out = write_suite(tiny), tmp_path / "run"
    first = run(suite, out=out, engine="ray")
    assert not first.failed_jobs and len(first.records.cell.unique()) == 8
    by_objective = first.records.drop_duplicates("cell").set_index(["objective", "seed"]).cell
    lost = [by_objective[("gmmn", 0)], by_objective[("gmmn", 1)], by_objective[("minimax", 1)]]
    for key in lost:  # a whole job and half of another: as if the driver had stopped early
        (out / "cells" / f"{key}.json").unlink()
    second = run(suite, out=out, engine="ray")
    assert second.skipped_cells == 5 and not second.failed_jobs
    pd.testing.assert_series_equal(comparable(second.records), comparable(first.records))
    third = run(suite, out=out, engine="ray")  # nothing left: every result is read from its one file
    assert third.skipped_cells == 8 and len(third.records) == len(first.records)


def test_a_dead_worker_is_retried_and_a_raising_job_fails_alone(cluster, tiny, tmp_path):
    registry, crashed, attempts = faulty_registry(tmp_path)
    raw = {**tiny, "datasets": {"ring": {}}, "metrics": ["modes"], "reporters": [],
           "objectives": {"crash-once": SMALL, "broken": SMALL}}
    outcome = run(parse_suite(raw, registry, source="tiny"), out=tmp_path / "run", registry=registry, engine="ray")
    assert crashed.exists(), "the first attempt should have killed its worker"
    assert len(outcome.records[outcome.records.objective == "crash-once"].cell.unique()) == 2
    assert outcome.failed_jobs == ["ring/broken (seeds 0, 1): ValueError: broken on purpose"]
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
            with attempts.open("a") as f:
                f.write("x")
            raise ValueError("broken on purpose")

    plugin = type("Faulty", (), {"benchbench_objectives": staticmethod(hookimpl(lambda: [CrashOnce, Broken]))})
    return registry_with([("faulty", plugin)]), crashed, attempts


def test_ctrl_c_cancels_running_tasks_and_keeps_finished_cells(cluster, tiny, write_suite, tmp_path):
    import ray

    tiny.update(steps=200_000, datasets={"ring": {}}, metrics=["modes"], reporters=[])
    tiny["objectives"] = {"gmmn": tiny["objectives"]["gmmn"]}  # a job of minutes beside the (data) job
    out = tmp_path / "run"

    def press_ctrl_c_when_the_reference_is_saved():
        deadline = time.monotonic() + 120
        while len(list((out / "cells").glob("*.json"))) < 2:
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)
        _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c_when_the_reference_is_saved, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        run(write_suite(tiny), out=out, engine="ray")
    assert len(list((out / "cells").glob("*.json"))) == 2
    deadline = time.monotonic() + 15
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert ray.available_resources().get("CPU", 0) == 2, "the training task should have been cancelled"


def test_cuda_needs_gpus_in_the_cluster(cluster, tiny, write_suite, tmp_path):
    import ray

    if ray.cluster_resources().get("GPU"):
        pytest.skip("the cluster has GPUs")
    tiny["device"] = "cuda"  # accepted by the file check even where this machine has no GPU
    with pytest.raises(ConfigError, match="'cuda' asked for, but the Ray cluster has no GPUs"):
        run(write_suite(tiny), out=tmp_path / "run", engine="ray")
    with pytest.raises(ConfigError, match="--device: 'cuda:1': with --engine ray use cuda"):
        run(write_suite(tiny), out=tmp_path / "run", engine="ray", device="cuda:1")


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
    from benchbench.ray_engine import RayEngine

    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    assert RayEngine().address == "10.0.0.1:6379" and RayEngine("other:6379").address == "other:6379"


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
