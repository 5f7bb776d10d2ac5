"""Checks of a suite against where it runs, before anything trains: data files that are not there,
a package or file a metric needs (:meth:`Metric.check`), sizes that cannot fit in its memory. Each is
one :class:`ConfigError` line naming the suite key (exit code 2), rather than every job failing at
run time. They are parts of the one check every engine makes (:func:`benchbench.engines.check.check`).

The memory estimates are the blueprints' (:mod:`benchbench.plan.blueprint`), for one member alone,
against all the free memory of the device: a suite refused here could not run even one seed at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..api.dataset import Dataset
from ..api.errors import BenchbenchError, ConfigError
from ..config.suite import ComponentSpec, Suite
from ..registry.components import Registry
from .blueprint import FLOAT_BYTES, Blueprint


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
        metric = registry.build(spec)
        for data in datasets:
            try:
                metric.check(data)
            except BenchbenchError as exc:
                raise ConfigError(f"{suite.source}: metrics.{spec.label}", str(exc)) from None
            except Exception:  # noqa: BLE001 - a broken plugin fails its own jobs, named, not the whole run
                pass


def check_sizes(suite: Suite, datasets: Sequence[tuple[ComponentSpec, Dataset]], blueprints: Sequence[Blueprint],
                free: int, device: str) -> None:
    """Refuse what cannot fit in ``free`` bytes of ``device`` even one member at a time: the real and
    generated samples of an evaluation, each objective's networks with their optimizer state, one
    member's training step (its activations) and its sampling of ``eval.samples`` at once."""
    n = max(suite.eval.samples, suite.eval.curve_samples)
    for spec, data in datasets:
        need = 2 * n * data.dim * FLOAT_BYTES  # real and generated samples of the (data) reference
        _refuse(need > free, f"{suite.source}: eval.samples", f"{n:,} samples of {spec.label} take {_size(need)}",
                free, device)
    for blueprint in blueprints:
        at = f"{suite.source}: objectives.{blueprint.objective}"
        need = blueprint.parameter_bytes()
        sizes = ", ".join(f"{net.name} {net.parameters:,}" for net in blueprint.networks)
        _refuse(need > free, at, f"networks of {blueprint.parameters:,} parameters ({sizes}) take {_size(need)} to "
                                 f"train", free, device)
        need = blueprint.train_bytes()
        _refuse(need > free, f"{at}.batch_size", f"one member training with batch_size {blueprint.batch_size:,} on "
                                                 f"{blueprint.dataset} takes {_size(need)}", free, device)
        need = blueprint.eval_bytes(n)
        _refuse(need > free, f"{suite.source}: eval.samples", f"generating {n:,} samples of {blueprint.dataset} with "
                                                              f"{blueprint.objective} takes {_size(need)}", free, device)


def _refuse(condition: bool, where: str, what: str, free: int, device: str) -> None:
    if condition:
        raise ConfigError(where, f"{what}, more than the {_size(free)} free on {device}: make it smaller")


def _size(n: int) -> str:
    return f"~{n / 2**30:,.1f} GiB" if n >= 2**30 else f"~{n / 2**20:,.0f} MiB"
