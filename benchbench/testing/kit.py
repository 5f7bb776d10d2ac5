"""The kit's shared pieces: the error its checks raise, the data they run on, and helpers that
name the component and what to fix."""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor

from ..api import params
from ..api.dataset import Dataset, Modes
from ..api.errors import BenchbenchError
from ..registry.components import default_registry, validate_component

__tracebackhide__ = True  # pytest shows a failed check at the author's test line (--fulltrace: everything)

MEMBERS = 3  # members stacked by the objective checks (stackable objectives)
JOB_STEPS = 2  # training steps of the job the objective checks run through the trainer
SAMPLES = 64  # samples drawn by the dataset checks
METRIC_SAMPLES = 400  # real and generated samples of the metric checks' evaluations
CPU = torch.device("cpu")


class ConformanceError(AssertionError):
    """A component breaks its contract; the message names it and says what to fix."""


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread while a check runs: its tensors are tiny, and several threads on a busy
    machine (or beside pytest-xdist workers) make them many times slower. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _single_threaded(check: Callable) -> Callable:
    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        with _one_thread():
            return check(*args, **kwargs)
    return wrapper


class KitMixture(Dataset):
    """Four isotropic 2-D Gaussians at (+-1, +-1), std 0.1, equal weights: the data the checks use."""

    name = "kit-mixture"
    shape = (2,)
    STD = 0.1

    def __init__(self, config: Any = None):
        super().__init__(config)
        self.centers = torch.tensor([[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0], [1.0, 1.0]])

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        device = generator.device
        k = torch.randint(len(self.centers), (n,), generator=generator, device=device)
        return self.centers.to(device)[k] + self.STD * torch.randn(n, 2, generator=generator, device=device)

    def log_prob(self, x: Tensor) -> Tensor:
        d2 = ((x[:, None, :] - self.centers.to(x.device)[None]) ** 2).sum(-1)  # [n, 4]
        log_components = -0.5 * d2 / self.STD**2 - 2 * math.log(self.STD) - math.log(2 * math.pi)
        return torch.logsumexp(log_components, dim=1) - math.log(len(self.centers))

    def modes(self) -> Modes:
        k = len(self.centers)
        return Modes(self.centers, torch.full((k,), self.STD), torch.full((k,), 1 / k))



def _component(kind: str, component: type | str) -> type:
    """The class, after the checks a hook's return goes through; a name: the installed component."""
    if isinstance(component, str):
        return default_registry().get(kind, component, "benchbench.testing").cls
    try:
        validate_component(kind, component)
    except BenchbenchError as exc:
        raise ConformanceError(f"{exc} (the check a plugin's hook return goes through)") from None
    return component


def _config(cls: type, settings: Mapping[str, Any] | None, label: str) -> Any:
    """``cls.Config`` built from ``{}`` (every field has a default), then from ``settings``."""
    config = None
    for values in ({}, dict(settings or {})):
        try:
            config = params.build(cls.Config, values, f"{cls.__name__}.Config")
        except BenchbenchError as exc:
            _fail(label, f"Config could not be built from {values!r}: {exc}")
    return config


def _dataset(dataset: Dataset | type[Dataset] | str | None) -> Dataset:
    if dataset is None:
        return KitMixture()
    if isinstance(dataset, Dataset):
        return dataset
    cls = _component("dataset", dataset)
    return cls(params.build(cls.Config, {}, f"{cls.__name__}.Config"))


def _call(label: str, what: str, function: Callable, *args: Any) -> Any:
    """``function(*args)``; an exception becomes a :class:`ConformanceError` naming ``what``."""
    try:
        return function(*args)
    except ConformanceError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the plugin raised, named
        raise ConformanceError(f"{label}: {what} raised {type(exc).__name__}: {exc}") from exc


def _label(cls: type) -> str:
    return f"{cls.__name__} ({getattr(cls, 'name', None)!r})"


def _fail(label: str, message: str):
    raise ConformanceError(f"{label}: {message}")

