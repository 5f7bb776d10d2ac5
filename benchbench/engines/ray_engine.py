"""Run jobs as Ray tasks: on a local Ray cluster, or on an existing one of many machines.

Each job (a dataset x objective with its stacked seeds, see :func:`benchbench.plan.cells.plan`) is one
task calling :func:`benchbench.train.trainer.run_job`. Outcomes come back to the driver, which writes
them into the run directory keyed by cell: no shared filesystem is needed, a task retried after a
worker died writes the same files again, and an interrupted run is completed by running it again
with the same ``--out``. Every node needs benchbench and the suite's plugins installed.

Ray is an optional extra (``pip install 'benchbench[ray]'``), imported only when this engine runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from ..api.errors import ConfigError
from ..config.suite import Suite, parse_suite, read_suite_file
from ..plan.cells import Job
from ..registry.components import Registry, default_registry
from ..registry.entry_points import RESTRICT_VARIABLE
from ..rundir.environment import environment
from ..train.trainer import JobOutcome, run_job
from .base import Done, Progress
from .check import Resources, check
from .failures import RemoteTraceback

MAX_RETRIES = 3  # attempts after a worker process or node dies (not after an exception in the job)
DEFAULT_GPUS_PER_TASK = 0.25  # small jobs: four share a GPU


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--engine ray", "Ray is not installed; pip install 'benchbench[ray]'") from None
    return ray


class RayEngine:
    """Connects to Ray (``address``, else ``$RAY_ADDRESS``, else a new local cluster) and runs jobs.

    A process that has already called ``ray.init`` (a notebook, a test) keeps its connection."""

    def __init__(self, address: str | None = None, gpus_per_task: float | None = None):
        self.ray = import_ray()
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        if gpus_per_task is not None and not 0 < gpus_per_task <= 1:
            raise ConfigError("--gpus-per-task", f"must be > 0 and <= 1 (a share of one GPU), got {gpus_per_task}")
        self.gpus_per_task = gpus_per_task or DEFAULT_GPUS_PER_TASK
        self.owns_connection = False

    def prepare(self, suite: str | Path | Suite, registry: Registry, device: str | None = None,
                **overrides: Any) -> Suite:
        """Load the suite, connect, resolve its device against the cluster's resources (this machine
        may have no GPU while the cluster has), and check it against them (:func:`.check.check`, on
        the driver: a missing data file or a budget too small for one step is one line, not a failure
        of every task). ``overrides`` as for ``with_overrides``."""
        if isinstance(suite, Suite):
            wanted = suite.device
        else:
            suite, wanted = _load_without_device(Path(suite), registry)
        where = "--device" if device else f"{suite.source}: device"
        wanted = _check_device(device or wanted, where)  # before anything starts
        suite = suite.with_overrides(**overrides)
        self.connect(num_cpus=suite.execution.workers or None)
        try:
            suite = dataclasses.replace(suite, device=self.resolve_device(wanted, where))
            check(suite, registry, self.resources(suite.device))  # on the driver, before any task starts
        except BaseException:
            self.close()
            raise
        if suite.device == "cuda" and not torch.cuda.is_available() and not suite.execution.max_members:
            # This machine cannot measure the workers' GPU memory: stack every seed; a job that runs
            # out of memory is retried in halves by run_job.
            suite = dataclasses.replace(suite, execution=dataclasses.replace(
                suite.execution, max_members=len(suite.seeds)))
        return suite

    def connect(self, num_cpus: int | None = None) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        handler = signal.getsignal(signal.SIGTERM)
        try:
            if self.address:
                ray.init(address=self.address)
            else:
                ray.init(address="local", num_cpus=num_cpus, include_dashboard=False)
        except ConnectionError as exc:
            hint = "" if os.environ.get("RAY_AUTH_MODE") else (
                "; if the cluster uses token authentication, set RAY_AUTH_MODE=token")
            raise ConfigError("--address", f"cannot connect to the Ray cluster at {self.address}: {exc}{hint}") \
                from None
        self.owns_connection = True
        if callable(handler):  # ray.init replaces it; keep the CLI's "SIGTERM stops like Ctrl-C"
            signal.signal(signal.SIGTERM, handler)

    def close(self) -> None:
        """Disconnect, and stop the local cluster if :meth:`connect` started it (a connection the
        process had before is kept)."""
        if self.owns_connection:
            self.ray.shutdown()
            self.owns_connection = False

    def resolve_device(self, value: Any, where: str) -> str:
        value = _check_device(value, where)
        gpus = self.ray.cluster_resources().get("GPU", 0)
        if value == "auto":
            return "cuda" if gpus else "cpu"
        if value == "cuda" and not gpus:
            raise ConfigError(where, "'cuda' asked for, but the Ray cluster has no GPUs; use auto or cpu")
        return value

    def resources(self, device: str) -> Resources:
        """The cluster: a CPU job may use the memory of its largest node; a GPU's memory is unknown on
        the driver (a job that runs out of it is retried in smaller stacks)."""
        if device != "cpu":
            return Resources(device, None)
        nodes = [n.get("Resources", {}).get("memory", 0) for n in self.ray.nodes() if n.get("Alive", True)]
        return Resources(device, int(max(nodes)) if nodes and max(nodes) > 0 else None)

    def environment(self, registry: Registry, device: str) -> dict[str, Any]:
        """The driver's environment, the device the tasks use, and the cluster."""
        ray = self.ray
        resources = ray.cluster_resources()
        cluster = f"{resources.get('CPU', 0):g} CPUs" + (f", {resources['GPU']:g} GPUs" if "GPU" in resources else "")
        nodes = sum(1 for node in ray.nodes() if node.get("Alive"))
        return {**environment(registry, "cpu"), "device": f"{device} on a Ray cluster ({cluster})",
                "engine": {"name": "ray", "ray": ray.__version__, "address": ray.get_runtime_context().gcs_address,
                           "nodes": nodes, "resources": resources,
                           "gpus_per_task": self.gpus_per_task if device == "cuda" else 0}}

    def execute(self, jobs: Sequence[Job], registry: Registry, on_done: Done, progress: Progress | None = None) -> None:
        """Submit every job as a task; ``on_done`` gets each outcome (or its exception) as it
        finishes, ``progress`` the job's member-steps. Ctrl-C cancels the tasks still running.
        Connects again if :meth:`close` let the cluster go."""
        ray = self.ray
        if not jobs:
            return
        self.connect(num_cpus=jobs[0].suite.execution.workers or None)
        cuda = torch.device(jobs[0].suite.device).type == "cuda"
        options: dict[str, Any] = {}
        if not self.owns_connection:  # --plugins: the workers load the same plugins as this process
            # (the workers of a local cluster started here inherit this process's environment)
            options["runtime_env"] = {"env_vars": {RESTRICT_VARIABLE: os.environ.get(RESTRICT_VARIABLE, "")}}
        task = ray.remote(_run).options(num_cpus=1, num_gpus=self.gpus_per_task if cuda else 0,
                                        max_retries=MAX_RETRIES, retry_exceptions=False, **options)
        # Plugins that are not installed (registry_with) travel with the tasks.
        shipped = None if registry is default_registry() else ray.put(registry)
        pending = {task.remote(job, shipped): job for job in jobs}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
                for ref in done:
                    job = pending.pop(ref)
                    on_done(job, _outcome(ray, ref))
                    if progress is not None and job.objective is not None:
                        progress(job.suite.steps * len(job.cells))
        except BaseException:  # Ctrl-C, SIGTERM: stop the tasks; finished cells are already saved
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise


def _run(job: Job, registry: Registry | None) -> JobOutcome:
    torch.set_num_threads(1)  # one CPU per task (on CUDA, Ray sets CUDA_VISIBLE_DEVICES: "cuda" is ours)
    return run_job(job, registry or default_registry())


def _outcome(ray, ref) -> JobOutcome | BaseException:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # the job raised: report the original exception
        if not isinstance(exc.cause, BaseException):
            return exc
        exc.cause.__cause__ = RemoteTraceback(str(exc))  # its text is the task's traceback: for run --traceback
        return exc.cause
    except ray.exceptions.RayError as exc:  # the worker died more than MAX_RETRIES times, or cancelled
        return exc


def _check_device(value: Any, where: str) -> str:
    """A device a Ray run can use, before the cluster says whether it has GPUs."""
    if not isinstance(value, str):
        raise ConfigError(where, f"expected a string, got {value!r}")
    if value.startswith("cuda:") and value[5:].isdigit():
        raise ConfigError(where, f"{value!r}: with --engine ray use cuda; Ray gives each task its GPU")
    if value not in ("auto", "cpu", "cuda"):
        raise ConfigError(where, f"got {value!r}; allowed: auto, cpu, cuda")
    return value


def _load_without_device(path: Path, registry: Registry) -> tuple[Suite, Any]:
    """The suite file checked as :func:`~benchbench.config.suite.load_suite` checks it, except its device,
    which the cluster decides."""
    raw = read_suite_file(path)
    if not isinstance(raw, Mapping):
        return parse_suite(raw, registry, source=str(path)), None  # raises parse_suite's one-line error
    suite = parse_suite({**raw, "device": "cpu"}, registry, source=str(path), default_name=path.stem)
    return suite, raw.get("device", "auto")
