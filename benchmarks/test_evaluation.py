"""What an evaluation costs: each metric plugin at the suites' sample sizes, and each family's sampler
on images in samples/s and GFLOP/s beside the GFLOP/s of its own training step, side by side in one run.

- Metrics on 2-D data: every metric plugin that applies to the 25-Gaussian grid, at 500 (the
  suites' ``curve_samples``) and 2,500 (their ``eval.samples``) generated against as many held-out
  samples, each alone and all of them in turn on one evaluation (as a run scores a cell); the
  generated samples are the data shifted and blurred, so no metric takes a shortcut on identical
  sets. Every round gets the samples in new tensors, as every cell does.
- Metrics on images: every feature-space metric plugin on 2,000 generated digits (suites/images.yaml's
  ``eval.samples``) against 2,000 real ones, new tensors in every round so that the memoised
  classifier features are computed inside the timing, as in a run. The classifier is trained once
  (cached under $BENCHBENCH_CACHE) before the timing.
- Samplers: the real sampler (:func:`benchbench.train.sampling.draw`) of a freshly built stack of
  MEMBERS members of each family (flow matching with 50 Euler steps, DDPM with 100 ancestral steps,
  GMMN, the non-saturating GAN and the VAE, all DCGAN-style networks with 16 channels), drawing
  SAMPLES images each, on 8x8 digits and on 28x28 images (the Fashion-MNIST shape; the values do not
  change the cost). The same test times the family's training step on the same stack; the terminal
  summary prints samples/s per member, the sampler's GFLOP/s and the training step's.

One intra-op thread, as each of benchbench's worker processes has (or $BENCHBENCH_THREADS). On a
loaded machine pass ``--benchmark-timer=time.process_time`` to time the CPU the process got.
"""

import dataclasses
import os

import pytest
import torch

from benchbench import Dataset, Evaluation, Split, default_registry, hookimpl, parse_suite, registry_with
from benchbench.plan.build import build
from benchbench.train.sampling import count_sample_flops, draw
from benchbench.train.stack import build_networks
from benchbench.train.timing import count_flops
from benchbench.train.trainer import stepper
from benchbench_plugins.metrics import memo

THREADS = int(os.environ.get("BENCHBENCH_THREADS", 1))
POINT_SIZES = (500, 2500)
IMAGE_SAMPLES = 2000
SMOKE_SAMPLES = 200  # plain test runs (--benchmark-disable) only check that each case works
MEMBERS, SAMPLES = 3, 200
CONV = {"architecture": "dcgan", "channels": 16, "batch_size": 64}
FAMILIES = {
    "flow": {**CONV, "solver": "euler", "sampling_steps": 50},
    "ddpm": {**CONV, "timesteps": 100},
    "gmmn": {**CONV, "noise_dim": 32},
    "nonsaturating": {**CONV, "noise_dim": 32},
    "vae": CONV,
}


class Squares28(Dataset):
    """28x28 images in [-1, 1] (a bright square in one of four quadrants): the Fashion-MNIST shape,
    offline. A sampler's cost depends on the shape, not on the pixels."""

    name = "squares28"
    shape = (1, 28, 28)
    bounds = (-1.0, 1.0)

    def _images(self, labels):
        x = -torch.ones(len(labels), *self.shape)
        for i, c in enumerate(labels.tolist()):
            r, q = divmod(c, 2)
            x[i, 0, 14 * r:14 * r + 14, 14 * q:14 * q + 14] = 1.0
        return x

    def sample(self, n, generator):
        labels = torch.randint(0, 4, (n,), generator=generator, device=generator.device)
        return self._images(labels.cpu()).to(generator.device)

    def split(self, name):
        return None


class _Plugin:
    @hookimpl
    def benchbench_datasets(self):
        return [Squares28]


def suite_parts(registry, dataset, objective, settings, seeds=1):
    suite = parse_suite({"seeds": seeds, "datasets": {dataset: {}}, "objectives": {objective: settings}}, registry,
                        source="benchmark")
    data = build(registry, suite.datasets[0])
    return data, build(registry, suite.objectives[0], data, torch.device("cpu")), suite.seeds


def metric(registry, name):
    entry = registry.get("metric", name, "benchmark")
    return entry.cls(entry.cls.Config())


# ---- metrics on 2-D samples ----------------------------------------------------------------------

def point_evaluation(n):
    registry = default_registry()
    dataset = build(registry, parse_suite({"seeds": 1, "datasets": {"grid": {}}, "objectives": {"gmmn": {}}},
                                          registry, source="benchmark").datasets[0])
    g = torch.Generator().manual_seed(0)
    real = dataset.heldout(n, g)
    fake = dataset.sample(n, g) * 1.02 + 0.05 * torch.randn(n, 2, generator=g)
    return Evaluation(real, fake, dataset, seed=0)


POINT_METRICS = [name for name in default_registry().available("metric")
                 if metric(default_registry(), name).applies(point_evaluation(20))]


def fresh(evaluation):
    """``pedantic`` setup: the same samples in new tensors, as each cell's evaluation has (what is
    memoised per tensor, such as the classifier's features, is then computed inside the timing), and
    no sample statistics kept from the previous round (:mod:`benchbench_plugins.metrics.memo`): each
    round costs what a job's first evaluation costs."""
    def setup():
        memo.clear()
        return (dataclasses.replace(evaluation, real=evaluation.real.clone(), fake=evaluation.fake.clone()),), {}
    return setup


@pytest.mark.parametrize("n", POINT_SIZES)
@pytest.mark.parametrize("name", POINT_METRICS)
def test_point_metric(benchmark, name, n):
    torch.set_num_threads(THREADS)
    n = min(n, SMOKE_SAMPLES) if benchmark.disabled else n
    evaluation, plugin = point_evaluation(n), metric(default_registry(), name)
    benchmark.group = f"metrics on {n} grid samples"
    benchmark.extra_info.update(metric=name, samples=n, threads=THREADS)
    values = benchmark.pedantic(plugin.compute, setup=fresh(evaluation), rounds=5, iterations=1, warmup_rounds=1)
    assert set(values) == {o.name for o in plugin.outputs}


@pytest.mark.parametrize("n", POINT_SIZES)
def test_point_metrics_of_one_cell(benchmark, n):
    """Every metric on one evaluation in turn, as a run scores a member of a cell."""
    torch.set_num_threads(THREADS)
    n = min(n, SMOKE_SAMPLES) if benchmark.disabled else n
    plugins = [metric(default_registry(), name) for name in POINT_METRICS]
    benchmark.group = f"metrics on {n} grid samples"
    benchmark.extra_info.update(metric="all", samples=n, threads=THREADS)
    values = benchmark.pedantic(lambda evaluation: [p.compute(evaluation) for p in plugins],
                                setup=fresh(point_evaluation(n)), rounds=5, iterations=1, warmup_rounds=1)
    assert len(values) == len(plugins)


# ---- metrics on images ---------------------------------------------------------------------------

def image_evaluation(n, dataset):
    g = torch.Generator().manual_seed(0)
    real = dataset.sample(n, g)
    fake = (dataset.sample(n, g) + 0.2 * torch.randn(n, *dataset.shape, generator=g)).clamp(-1, 1)
    return Evaluation(real, fake, dataset, seed=0)


IMAGE_DATASET = build(default_registry(), parse_suite({"seeds": 1, "datasets": {"digits": {}},
                                                        "objectives": {"gmmn": {}}}, default_registry(),
                                                       source="benchmark").datasets[0])
IMAGE_METRICS = [name for name in default_registry().available("metric") if name != "throughput"
                 and metric(default_registry(), name).applies(image_evaluation(4, IMAGE_DATASET))]


@pytest.mark.parametrize("name", IMAGE_METRICS)
def test_image_metric(benchmark, name):
    torch.set_num_threads(THREADS)
    n = SMOKE_SAMPLES if benchmark.disabled else IMAGE_SAMPLES
    plugin = metric(default_registry(), name)
    template = image_evaluation(n, IMAGE_DATASET)
    plugin.compute(template)  # trains or loads the classifier outside the timing

    benchmark.group = f"metrics on {n} digits"
    benchmark.extra_info.update(metric=name, samples=n, threads=THREADS)
    values = benchmark.pedantic(plugin.compute, setup=fresh(template), rounds=5, iterations=1, warmup_rounds=1)
    assert set(values) == {o.name for o in plugin.outputs}


# ---- samplers on images --------------------------------------------------------------------------

def step_gflops(objective, data, seeds, timer, rounds=7):
    """GFLOP/s of the family's training step on the same stack: counted FLOPs / median time of
    ``rounds`` steps, on the benchmark's own clock ``timer``."""
    step = stepper(objective, data, seeds, torch.device("cpu"))
    flops = count_flops(step)
    seconds = []
    for _ in range(rounds):
        start = timer()
        step()
        seconds.append(timer() - start)
    return flops / sorted(seconds)[len(seconds) // 2] / 1e9


@pytest.mark.parametrize("dataset", ["digits", "squares28"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_sampler(benchmark, family, dataset):
    torch.set_num_threads(THREADS)
    registry = registry_with([("benchmark-images", _Plugin())])
    data, objective, seeds = suite_parts(registry, dataset, family, FAMILIES[family], MEMBERS)
    nets = build_networks(objective, data, seeds, torch.device("cpu"))
    n = 8 if benchmark.disabled else SAMPLES
    fake = draw(nets, objective, data, seeds, n, "benchmark")
    assert fake.shape == (MEMBERS, n, *data.shape)
    flops, note = count_sample_flops(nets, objective, data, seeds, torch.device("cpu"))
    assert flops, note
    benchmark.group = "image samplers"
    benchmark.extra_info.update(family=family, dataset=dataset, samples=n, members=MEMBERS, nfe=objective.nfe(),
                                sample_flops=flops, threads=THREADS,
                                train_gflops=None if benchmark.disabled else step_gflops(objective, data, seeds,
                                                                                   benchmark._timer))
    benchmark.pedantic(draw, args=(nets, objective, data, seeds, n, "benchmark"), rounds=3, iterations=1,
                       warmup_rounds=1)
