"""Before anything trains: every objective of a suite builds its declared networks, evaluates each
update's loss once and draws a small sample on one member, so that a loss or sampler naming a
missing network, or a sampler returning the wrong shape, fails that objective's jobs before they
train, in one line naming the objective, its plugin and distribution; the other jobs run."""

from __future__ import annotations

import torch

from ..api.dataset import Dataset
from ..api.errors import BenchbenchError, ComponentError, PluginError
from ..api.objective import MissingNetwork, Objective
from ..config.suite import ComponentSpec, Suite
from ..plan.cells import stream
from ..registry.components import Registry
from .declarations import check_sample, declared_networks, declared_nfe, declared_updates, name_of
from .stack import build_networks
from .trainer import build, stacked_data

TRY_BATCH = 2  # samples per member when an objective's own updates and sampler are tried


def check_objectives(suite: Suite, registry: Registry) -> dict[tuple[str, str], ComponentError]:
    """The objectives whose declarations are inconsistent on a dataset: (dataset label, objective
    label) -> the error naming the objective (its jobs fail with it, untrained; the others run)."""
    device = torch.device("cpu")
    refused: dict[tuple[str, str], ComponentError] = {}
    for data_spec in suite.datasets:
        dataset = build(registry, data_spec)
        for spec in suite.objectives:
            try:
                check_objective(registry, spec, dataset, device)
            except ComponentError as exc:
                refused[(data_spec.label, spec.label)] = exc
            except PluginError as exc:  # named after the objective: the job's line adds its plugin
                refused[(data_spec.label, spec.label)] = ComponentError("objective", spec.type, exc.message)
            except BenchbenchError:
                raise
            except Exception:  # noqa: BLE001 - a plugin that raises fails its own jobs, named, not the run
                continue
    return refused


def check_objective(registry: Registry, spec: ComponentSpec, dataset: Dataset, device: torch.device) -> None:
    objective = build(registry, spec, dataset, device)
    networks = declared_networks(objective, dataset)
    declared_updates(objective, networks)
    declared_nfe(objective)
    cls = type(objective)
    if cls.sample is Objective.sample and cls.updates is Objective.updates:
        return  # the core's own GAN-shaped loop and sampler
    with torch.random.fork_rng(devices=[]):
        _try(objective, dataset, build_networks(objective, dataset, [0], device))


def _try(objective: Objective, dataset: Dataset, nets) -> None:
    """One loss evaluation per update and one small sample, on one member: missing networks and
    samples of the wrong shape are refused; other errors are the job's to report."""
    owner = name_of(objective)
    rng = [stream(0, "declarations")]
    for update in nets.updates:
        try:
            with objective.random_streams([stream(0, "declarations-loss")]):
                update.loss(nets.view(rng), stacked_data(dataset, rng, TRY_BATCH))
        except MissingNetwork as exc:
            raise PluginError(owner, f"update {update.name!r}: its loss {exc}") from None
        except Exception:  # noqa: BLE001 - left to the job, which reports it with the plugin's name
            pass
    try:
        with objective.random_streams([stream(0, "declarations-sample")]), torch.no_grad():
            fake = objective.sample(nets.view(rng), TRY_BATCH)
    except MissingNetwork as exc:
        raise PluginError(owner, f"sample: {exc}") from None
    check_sample(objective, fake, 1, TRY_BATCH, dataset.shape)
