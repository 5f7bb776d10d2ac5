"""Conformance checks of a dataset: samples, held-out data, densities, modes and splits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from ..api.dataset import Dataset, Modes, Split
from .kit import CPU, SAMPLES, _call, _component, _config, _fail, _label, _single_threaded

__tracebackhide__ = True


@_single_threaded
def check_dataset(dataset: type[Dataset] | str, settings: Mapping[str, Any] | None = None, n: int = SAMPLES) -> None:
    """Check a dataset class (or the name of an installed one) against its contract.

    Registrable, ``Config`` buildable from ``{}``; ``shape`` a tuple of positive sizes;
    ``sample(n, generator)``: float32 ``[n, *shape]`` on the generator's device, finite, within
    ``bounds``, fixed by the generator alone (the global RNG does not change it) and different for
    another seed; ``sample_members`` equal to ``sample`` member by member; ``heldout``: at most
    ``n`` samples of the right shape; ``log_prob`` (when defined): ``[n]`` finite on samples;
    ``modes()``: None or consistent :class:`~benchbench.Modes`; ``split(name)``: None or a
    :class:`~benchbench.Split` of the right shape.
    """
    cls = _component("dataset", dataset)
    label = _label(cls)
    data = _call(label, "the constructor", cls, _config(cls, settings, label))
    shape = getattr(data, "shape", None)
    if not (isinstance(shape, tuple) and shape and all(isinstance(s, int) and s > 0 for s in shape)):
        _fail(label, f"shape is {shape!r}; expected a tuple of positive ints, set in __init__ or on the class")
    first = _sample(label, data, n, 0, global_seed=1)
    if not torch.equal(first, _sample(label, data, n, 0, global_seed=2)):
        _fail(label, "sample() is not fixed by its generator: it uses the global random state (pass "
                     "generator= to every torch.rand/randn/randint/multinomial)")
    if torch.equal(first, _sample(label, data, n, 1, global_seed=1)):
        _fail(label, "sample() returned the same samples for two different generator seeds")
    _check_sample_members(label, data, n)
    _check_heldout(label, data, n)
    if data.has_log_prob:
        _check_log_prob(label, data, first)
    _check_modes(label, data)
    for name in ("train", "validation", "test"):
        _check_split(label, data, name)


def _sample(label: str, data: Dataset, n: int, seed: int, global_seed: int) -> Tensor:
    """``sample(n)`` from a generator seeded ``seed``, the global random state set to ``global_seed``."""
    torch.manual_seed(global_seed)
    x = _call(label, "sample", data.sample, n, torch.Generator().manual_seed(seed))
    _check_samples(label, f"sample({n})", x, (n, *data.shape), data.bounds)
    return x


def _check_samples(label: str, what: str, x: Any, shape: tuple[int, ...], bounds: tuple[float, float] | None) -> None:
    if not (isinstance(x, Tensor) and x.dtype == torch.float32 and tuple(x.shape) == shape and x.device == CPU):
        got = (tuple(x.shape), x.dtype, str(x.device)) if isinstance(x, Tensor) else type(x).__name__
        _fail(label, f"{what} returned {got}; expected float32 of shape {shape} on the generator's device (cpu)")
    if not bool(torch.isfinite(x).all()):
        _fail(label, f"{what} returned non-finite values")
    if bounds is not None and not (x.min() >= bounds[0] and x.max() <= bounds[1]):
        _fail(label, f"{what} returned values in [{float(x.min())}, {float(x.max())}], outside bounds {bounds}")


def _check_sample_members(label: str, data: Dataset, n: int) -> None:
    stacked = _call(label, "sample_members", data.sample_members, n, [torch.Generator().manual_seed(s) for s in (0, 1)])
    one_by_one = torch.stack([data.sample(n, torch.Generator().manual_seed(s)) for s in (0, 1)])
    if not (isinstance(stacked, Tensor) and stacked.shape == one_by_one.shape and torch.equal(stacked, one_by_one)):
        _fail(label, "sample_members(n, generators) differs from sample(n, generator) member by member; it may "
                     "only compute the same samples faster")


def _check_heldout(label: str, data: Dataset, n: int) -> None:
    x = _call(label, "heldout", data.heldout, n, torch.Generator().manual_seed(0))
    count = x.shape[0] if isinstance(x, Tensor) and x.ndim >= 1 else -1
    if not 0 < count <= n:
        _fail(label, f"heldout({n}) returned {count} samples; expected between 1 and {n}")
    _check_samples(label, f"heldout({n})", x, (count, *data.shape), data.bounds)


def _check_log_prob(label: str, data: Dataset, x: Tensor) -> None:
    log_p = _call(label, "log_prob", data.log_prob, x)
    if not (isinstance(log_p, Tensor) and log_p.shape == (len(x),) and log_p.is_floating_point()):
        got = tuple(log_p.shape) if isinstance(log_p, Tensor) else type(log_p).__name__
        _fail(label, f"log_prob of {len(x)} samples returned {got}; expected a float tensor of shape ({len(x)},)")
    if not bool(torch.isfinite(log_p).all()):
        _fail(label, "log_prob is not finite on the dataset's own samples (compute it with logsumexp)")


def _check_modes(label: str, data: Dataset) -> None:
    modes = _call(label, "modes", data.modes)
    if modes is None:
        return
    if not isinstance(modes, Modes):
        _fail(label, f"modes() returned {type(modes).__name__}; expected benchbench.Modes or None")
    k = modes.centers.shape[0]
    if (tuple(modes.centers.shape[1:]) != data.shape or modes.stds.shape != (k,) or modes.weights.shape != (k,)
            or not bool((modes.stds > 0).all()) or abs(float(modes.weights.sum()) - 1) > 1e-5):
        _fail(label, f"modes() is inconsistent: centers {tuple(modes.centers.shape)}, stds {tuple(modes.stds.shape)}, "
                     f"weights {tuple(modes.weights.shape)}; expected [K, *shape], [K] positive, [K] summing to 1")


def _check_split(label: str, data: Dataset, name: str) -> None:
    split = _call(label, f"split({name!r})", data.split, name)
    if split is None:
        return
    if not isinstance(split, Split):
        _fail(label, f"split({name!r}) returned {type(split).__name__}; expected benchbench.Split or None")
    n = len(split.x)
    if tuple(split.x.shape[1:]) != data.shape or split.x.dtype != torch.float32 or split.labels.shape[0] != n \
            or split.labels.dtype != torch.int64:
        _fail(label, f"split({name!r}) holds x {tuple(split.x.shape)} {split.x.dtype} and labels "
                     f"{tuple(split.labels.shape)} {split.labels.dtype}; expected float32 [N, *shape] and int64 [N]")


