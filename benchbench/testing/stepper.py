"""One training step of an objective through the trainer a run executes, for timing."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from ..api import params
from ..api.dataset import Dataset
from ..api.objective import Objective
from ..plan.build import setup_data
from ..train.trainer import stepper
from .kit import _component, _dataset

__tracebackhide__ = True


def training_stepper(objective: type[Objective] | str, settings: Mapping[str, Any] | None = None,
                     dataset: Dataset | type[Dataset] | str | None = None, members: int = 1,
                     device: str | torch.device = "cpu") -> Callable[[], None]:
    """``step()``: one training step (every update: a GAN's k critic updates, one generator update) of
    ``members`` freshly built stacked seeds, through :func:`benchbench.train.trainer.stepper`, the code a run executes.
    ``objective``: a class or the name of an installed one; ``settings``: a suite's mapping;
    ``dataset``: an instance, a class, the name of an installed one, or None (:class:`KitMixture`)."""
    cls = _component("objective", objective)
    device = torch.device(device)
    data = _dataset(dataset)
    config = params.build(cls.Config, settings, f"{cls.__name__} settings")
    instance = cls(config, setup_data(data, device))
    return stepper(instance, data, range(members), device)


