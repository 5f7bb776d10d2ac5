"""The one check of a planned suite against where it will run (:func:`check`), made by every engine
before any work starts (:meth:`LocalEngine.prepare`, :meth:`RayEngine.prepare`: on the driver, against
the cluster's resources).

In order: the data files are there and the metrics have what they need (:mod:`benchbench.plan.preflight`);
every (dataset, objective) gets its blueprint, which refuses declarations that cannot run
(:mod:`benchbench.train.blueprints`); their sizes fit the memory; a FLOP or seconds budget pays for one
step (:mod:`benchbench.train.step_cost`); warmup and learning-rate decay suit the budget
(:mod:`benchbench.config.recipes`). Each refusal is one :class:`ConfigError` line naming the suite key
(exit code 2), before anything trains. Then two warnings, each one line: a ladder that retrains every
rung, and sampling for evaluation that would take very long.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config.recipes import check_recipes
from ..config.suite import Suite
from ..plan.blueprint import Blueprint
from ..plan.build import build
from ..plan.ladder import warn_retrains
from ..plan.preflight import check_data, check_metrics, check_sizes
from ..plan.sizing import free_bytes
from ..registry.components import Registry
from ..train import eval_cost
from ..train.blueprints import suite_blueprints
from ..train.step_cost import check_budget


@dataclasses.dataclass(frozen=True)
class Resources:
    """Where the jobs run: the suite's device and the memory one job may use there (None: unknown)."""

    device: str
    free_bytes: int | None


def local_resources(suite: Suite) -> Resources:
    """This machine: the free memory of the suite's device."""
    return Resources(suite.device, free_bytes(torch.device(suite.device)))


def check(suite: Suite, registry: Registry, resources: Resources) -> list[Blueprint]:
    """Refuse ``suite`` (one :class:`ConfigError`) when it could not run on ``resources``; its blueprints."""
    datasets = [(spec, build(registry, spec)) for spec in suite.datasets]
    for spec, data in datasets:
        check_data(data, f"{suite.source}: datasets.{spec.label}")
    check_metrics(suite, registry, [data for _, data in datasets])
    blueprints = suite_blueprints(suite, registry, [data for _, data in datasets])  # refuses what cannot run
    if resources.free_bytes is not None:
        check_sizes(suite, datasets, blueprints, resources.free_bytes, resources.device)
    check_budget(suite, registry, blueprints)
    check_recipes(suite)
    warn_retrains(suite)  # a ladder that trains each rung from scratch says so, with the cost
    eval_cost.warn_if_slow(suite, registry)  # a sampler that makes evaluation very long: one line, now
    return blueprints
