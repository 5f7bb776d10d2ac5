"""Building the components a suite names, in one place: a dataset, metric or reporter from its
settings (:meth:`benchbench.registry.components.Registry.build`), an objective from its settings
and a sample of its data (:func:`setup_data`), the same sample wherever it is built."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..api.dataset import Dataset
from ..config.suite import ComponentSpec
from ..registry.components import Registry
from .cells import stream

SETUP_SAMPLES = 1024  # real samples an objective may use to scale its settings to the data


def setup_data(dataset: Dataset, device: torch.device | str = "cpu") -> Tensor:
    """The real samples an objective is built with (``Objective(config, data)``): the same for every
    seed, from the "setup" stream of seed 0."""
    return dataset.sample(SETUP_SAMPLES, stream(0, "setup", device))


def build(registry: Registry, spec: ComponentSpec, dataset: Dataset | None = None,
          device: torch.device | str = "cpu") -> Any:
    """The component ``spec`` names (its config was validated when the suite loaded); an objective
    is built on ``dataset``'s :func:`setup_data`."""
    if spec.kind != "objective":
        return registry.build(spec)
    return registry.entry(spec).cls(spec.config, setup_data(dataset, device))
