"""Checks of a suite against this machine, before anything trains: sizes that cannot fit in its
memory, data files that are not there, a package or file a metric needs (:meth:`Metric.check`), and a
FLOP or seconds budget that does not pay for one training step of some objective. Each is one :class:`ConfigError` line naming the suite key (exit
code 2), rather than every job failing at run time.

The memory estimates (:mod:`benchbench.plan.sizing`) are for one member alone, against all the free
memory of the device: a suite refused here could not run even one seed at a time.
"""

from __future__ import annotations

import torch

from ..api.dataset import Dataset
from ..api.errors import BenchbenchError, ConfigError
from ..api.objective import CriticConfig, ObjectiveConfig
from ..api.objective_config import generator_setting
from ..config.suite import Suite
from ..registry.components import Registry
from .sizing import OPTIMIZER_COPIES, eval_bytes, free_bytes, member_bytes


def preflight(suite: Suite, registry: Registry) -> None:
    """Refuse ``suite`` when its data files are missing or its sizes cannot fit on its device."""
    datasets = [(spec, registry.get("dataset", spec.type, spec.label).cls(spec.config)) for spec in suite.datasets]
    for spec, data in datasets:
        check_data(data, f"{suite.source}: datasets.{spec.label}")
    check_metrics(suite, registry, [data for _, data in datasets])
    free = free_bytes(torch.device(suite.device))
    if free is not None:
        check_sizes(suite, datasets, free)


def check_data(data: Dataset, where: str) -> None:
    """Load the data's files now (a finite dataset's splits), so that a missing or damaged file is
    one line before training instead of a failure of every job; other errors are left to the jobs,
    which name the plugin."""
    try:
        data.split("train")
    except BenchbenchError as exc:
        raise ConfigError(where, str(exc)) from None
    except Exception:  # noqa: BLE001 - a broken plugin fails its own jobs, named, not the whole run
        pass


def check_metrics(suite: Suite, registry: Registry, datasets: list[Dataset]) -> None:
    """Each metric's own check (:meth:`Metric.check`: a package or a file it needs) on each dataset."""
    for spec in suite.metrics:
        metric = registry.get("metric", spec.type, spec.label).cls(spec.config)
        for data in datasets:
            try:
                metric.check(data)
            except BenchbenchError as exc:
                raise ConfigError(f"{suite.source}: metrics.{spec.label}", str(exc)) from None
            except Exception:  # noqa: BLE001 - a broken plugin fails its own jobs, named, not the whole run
                pass


def check_sizes(suite: Suite, datasets: list[tuple], free: int) -> None:
    device = suite.device
    n = max(suite.eval.samples, suite.eval.curve_samples)
    for spec, data in datasets:
        need = 2 * n * data.dim * 4  # real and generated samples of the (data) reference
        _refuse(need > free, f"{suite.source}: eval.samples", f"{n:,} samples of {spec.label} take {_size(need)}",
                free, device)
        for objective in suite.objectives:
            cfg: ObjectiveConfig = objective.config
            at = f"{suite.source}: objectives.{objective.label}"
            parameters = mlp_parameters(cfg, data)
            _refuse(parameters * 4 * OPTIMIZER_COPIES > free, f"{at}.hidden",
                    f"networks of {parameters:,} parameters take {_size(parameters * 4 * OPTIMIZER_COPIES)} to train",
                    free, device)
            need = member_bytes(cfg, data)
            _refuse(need > free, f"{at}.batch_size", f"one member training with batch_size {cfg.batch_size:,} on "
                                                     f"{spec.label} takes {_size(need)}", free, device)
            need = eval_bytes(cfg, data, n)
            _refuse(need > free, f"{suite.source}: eval.samples", f"generating {n:,} samples of {spec.label} with "
                                                                  f"{objective.label} takes {_size(need)}", free, device)


def mlp_parameters(cfg: ObjectiveConfig, data: Dataset) -> int:
    """Parameters of one member's MLP networks (0 for other architectures), counted without building them."""
    if generator_setting(cfg, "architecture") != "mlp":
        return 0
    widths = [[generator_setting(cfg, "noise_dim"), *generator_setting(cfg, "hidden"), data.dim]]
    if isinstance(cfg, CriticConfig):
        widths.append([data.dim, *cfg.critic_hidden, 1])
    return sum((a + 1) * b for w in widths for a, b in zip(w, w[1:]))


def _refuse(condition: bool, where: str, what: str, free: int, device: str) -> None:
    if condition:
        raise ConfigError(where, f"{what}, more than the {_size(free)} free on {device}: make it smaller")


def _size(n: int) -> str:
    return f"~{n / 2**30:,.1f} GiB" if n >= 2**30 else f"~{n / 2**20:,.0f} MiB"
