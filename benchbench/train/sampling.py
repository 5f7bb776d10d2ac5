"""Drawing samples from a trained stack through its objective's sampler (:meth:`benchbench.Objective.sample`),
timing it and counting its FLOPs.

Every draw takes fresh per-member streams, named by purpose, so a curve point, the final
evaluation and each repeat of the throughput measurement see the same samples for the same seed:
the generator noise ``nets.prior(n)`` from ``<purpose>-noise`` (``curve-noise``, ``eval-noise``: the
streams of the GAN-only core, so GAN records stay the same) and the sampler's own randomness
(``objective.random_streams``: a diffusion model's noise at every step) from ``<purpose>-sample``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..api.dataset import Dataset
from ..api.objective import Objective
from ..plan.cells import stream
from .declarations import check_sample
from .phases import timed_as
from .stack import Networks
from .timing import Stopwatch, count_flops

SAMPLING_REPEATS = 3  # the sampling-throughput measurement takes the fastest of at most these
REPEAT_WITHIN_S = 1.0  # ... repeating only while the draws so far took less than this (s): a slow sampler is timed once
FLOP_SAMPLES = 16  # samples per member drawn under the FLOP counter


def streams(seeds: Sequence[int], purpose: str, device: torch.device) -> list[torch.Generator]:
    return [stream(s, purpose, device) for s in seeds]


@timed_as("sampling", is_part=True)
def draw(nets: Networks, objective: Objective, dataset: Dataset, seeds: Sequence[int], n: int, purpose: str
         ) -> Tensor:
    """``n`` samples per member ``[M, n, *shape]`` from ``objective.sample``, under ``no_grad``,
    from the members' fresh ``purpose`` streams; the shape checked."""
    device = nets.loss_rng[0].device if nets.loss_rng else torch.device("cpu")
    noise, randomness = streams(seeds, f"{purpose}-noise", device), streams(seeds, f"{purpose}-sample", device)
    return _sample(nets, objective, dataset, noise, randomness, n)


def _sample(nets: Networks, objective: Objective, dataset: Dataset, noise: list[torch.Generator],
            randomness: list[torch.Generator], n: int) -> Tensor:
    with objective.random_streams(randomness), torch.no_grad():
        fake = objective.sample(nets.view(noise), n)
    return check_sample(objective, fake, len(noise), n, dataset.shape)


@timed_as("sampling", is_part=True)
def timed_draw(nets: Networks, objective: Objective, dataset: Dataset, seeds: Sequence[int], n: int,
               device: torch.device) -> tuple[Tensor, float]:
    """(:func:`draw` of ``n`` "eval" samples, the fastest of up to :data:`SAMPLING_REPEATS` wall times
    of the whole sampler: its noise, every network evaluation, all members). Each repeat starts
    from the same streams, so each draws the same samples. Repeats stop once the draws took
    :data:`REPEAT_WITHIN_S` in all: a draw that long is timed well enough once, and repeating it
    tripled the final evaluation of DDPM and flow (ancestral and ODE samplers of 50-100 steps)."""
    seconds: list[float] = []
    while not seconds or (len(seconds) < SAMPLING_REPEATS and sum(seconds) < REPEAT_WITHIN_S):
        noise, randomness = streams(seeds, "eval-noise", device), streams(seeds, "eval-sample", device)
        clock = Stopwatch(device)
        clock.start()
        fake = _sample(nets, objective, dataset, noise, randomness, n)
        clock.stop()
        seconds.append(clock.seconds)
    return fake, min(seconds)


@timed_as("sampling", is_part=True)
def count_sample_flops(nets: Networks, objective: Objective, dataset: Dataset, seeds: Sequence[int],
                       device: torch.device) -> tuple[float | None, str]:
    """(FLOPs of the sampler per generated sample of one member, or None and why), counted on
    :data:`FLOP_SAMPLES` samples per member. Never fails the job."""
    try:
        flops = count_flops(lambda: draw(nets, objective, dataset, seeds, FLOP_SAMPLES, "flops"))
    except Exception as exc:  # noqa: BLE001 - a sampler the counter cannot trace; the job itself may still run
        return None, f"FLOPs not counted: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    if not flops:
        return None, "no floating-point operations counted"
    return flops / (len(seeds) * FLOP_SAMPLES), ""
