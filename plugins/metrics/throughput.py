"""Training and sampling throughput of a cell, from the job's :class:`benchbench.Timing`.

The seeds of a job are trained together as ONE stacked model of ``members`` seeds: one wall
clock and one memory peak cover them all. The numbers are therefore amortised per trained model:

- ``train_time_s`` = train_seconds / members (the job's training time shared among its seeds);
- ``model_steps_per_s`` = steps * members / train_seconds (training iterations per second,
  counted per model: every member advances ``steps`` in ``train_seconds``);
- ``samples_per_s`` = members * samples / sample_seconds (generator samples per second, all
  members together; sample_seconds is the fastest of up to three draws of the same samples, one
  draw when it took over a second);
- ``peak_memory_mb`` = peak_memory_bytes / 2^20 of the whole job (not divided; NaN if unknown);
- ``gflop_per_s`` = flops_per_step * steps / train_seconds / 1e9: the achieved rate of the whole
  stack's matrix products and convolutions (FLOPs counted with torch's per-operator formulas);
  ``Unavailable(timing.flops_note)`` (tables: ``n/a (reason)``) when the step's FLOPs were not counted;
- ``train_steps`` = steps: training steps of each model (each the objective's updates, e.g. k
  critic steps and one generator step);
- ``train_flops`` = flops_per_step * steps / members: FLOPs spent training one model;
- ``flops_per_sample``: FLOPs of the real sampler per generated sample (all its network
  evaluations and its elementwise updates), counted the same way;
- ``nfe``: network evaluations per generated sample (the objective's ``nfe()``).

FLOPs are counted with torch's per-operator formulas for matrix products and convolutions plus an
estimate of one per element for elementwise operators and reductions
(:func:`benchbench.train.timing.count_flops`).

Every output has scope "job": the seeds of one job share them, so summaries count them once per
job. Applies only to final evaluations of trained cells (timing is None for training curves and
for the data reference row).
"""

from __future__ import annotations

import math

from benchbench import Evaluation, Metric, Output, Timing, Unavailable, hookimpl


def throughput(timing: Timing) -> dict[str, float | Unavailable]:
    """``train_time_s``, ``model_steps_per_s``, ``samples_per_s``, ``peak_memory_mb``, ``gflop_per_s``,
    ``train_steps``, ``train_flops``, ``flops_per_sample`` and ``nfe`` over the ``members`` of a stacked
    job (see the module docstring for the formulas)."""
    members = timing.members
    memory = math.nan if timing.peak_memory_bytes is None else timing.peak_memory_bytes / 2**20
    not_counted = Unavailable(timing.flops_note or "FLOPs not counted")
    return {
        "train_steps": float(timing.steps),
        "train_flops": not_counted if not timing.flops_per_step else timing.flops_per_step * timing.steps / members,
        "flops_per_sample": Unavailable(timing.sample_flops_note or "FLOPs not counted")
        if not timing.flops_per_sample else float(timing.flops_per_sample),
        "nfe": float(timing.nfe),
        "train_time_s": timing.train_seconds / members,
        "model_steps_per_s": _ratio(timing.steps * members, timing.train_seconds),
        "samples_per_s": _ratio(members * timing.samples, timing.sample_seconds),
        "peak_memory_mb": float(memory),
        "gflop_per_s": Unavailable(timing.flops_note or "FLOPs not counted") if not timing.flops_per_step else
        _ratio(timing.flops_per_step * timing.steps / 1e9, timing.train_seconds),
    }


def _ratio(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else math.nan


class Throughput(Metric):
    """Per-model training time, training and sampling rates, and the job's peak memory."""

    name = "throughput"
    outputs = (
        Output("train_time_s", "throughput", "lower", "training wall time of the job / members (s per trained model)",
               "job"),
        Output("model_steps_per_s", "throughput", "higher", "training iterations per second, counted per model: "
                                                            "steps x members / job training time", "job"),
        Output("samples_per_s", "throughput", "higher", "generator samples per second: members x samples / sampling "
                                                        "time", "job"),
        Output("peak_memory_mb", "throughput", "lower", "peak memory of the whole stacked job (MiB; CUDA allocated or "
                                                        "process RSS)", "job"),
        Output("gflop_per_s", "throughput", "higher", "achieved GFLOP/s of the job's training steps (matrix "
                                                      "products and convolutions, elementwise estimated)", "job"),
        Output("train_steps", "throughput", "none", "training steps of each model", "job"),
        Output("train_flops", "throughput", "none", "FLOPs spent training each model (per member)", "job"),
        Output("flops_per_sample", "throughput", "lower", "FLOPs of the sampler per generated sample (every network "
                                                          "evaluation)", "job"),
        Output("nfe", "throughput", "none", "network evaluations per generated sample", "job"),
    )

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.timing is not None

    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        return throughput(evaluation.timing)


@hookimpl
def benchbench_metrics():
    return [Throughput]
