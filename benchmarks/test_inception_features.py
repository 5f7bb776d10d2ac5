"""Images/s of the two feature sets of the image metrics on the CPU, on CIFAR-shaped images (3x32x32):
the dataset's own classifier (benchbench's ConvClassifier, as trained for CIFAR-10) and torch-fidelity's
Inception-v3 (pool features and logits in one pass; images resized to 299x299 inside, so its cost does not
depend on the input size). Speed does not depend on the weights' values: both networks have random weights
of the real architecture (Inception's: a file written here, loaded through benchbench's path).

Each case records ``images`` per call in ``extra_info``; images/s = images / median. The time these
features add to an evaluation of 10,000 samples is 10,000 / (images/s) for the generated images (plus as
much again for the held-out real images the first time: they are cached on disk per split afterwards).
In plain test runs (benchmarks disabled) each case runs once on 4 images. Skips where torch-fidelity does
not import (the README says which torch/torchvision pairs work). Threads: torch's default, or
$BENCHBENCH_THREADS.
"""

import os

import pytest
import torch

from benchbench import ConfigError
from benchbench.api.download import file_checksum
from benchbench.testing.inception import random_inception_weights
from benchbench_plugins import inception as inc
from benchbench_plugins.features import ConvClassifier

IMAGES = 64  # per timed call
SMOKE_IMAGES = 4


def fidelity_problem() -> str:
    try:
        inc.torch_fidelity()
    except ConfigError as exc:
        return str(exc)
    return ""


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("BENCHBENCH_THREADS", before)))
    yield torch.get_num_threads()
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def random_inception(tmp_path_factory):
    if fidelity_problem():
        pytest.skip(fidelity_problem())
    path = random_inception_weights(tmp_path_factory.mktemp("weights"))
    return inc.inception(str(path), file_checksum(path))


def cifar_images(n):
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1


@pytest.mark.parametrize("features", ["classifier", "inception"])
def test_feature_images_per_second(benchmark, threads, features, request):
    n = SMOKE_IMAGES if benchmark.disabled else IMAGES
    if features == "inception":
        net = request.getfixturevalue("random_inception")
        compute = lambda x: net._apply(inc.to_uint8(x, (-1.0, 1.0)))  # noqa: E731 - uncached, as for new samples
    else:
        classifier = ConvClassifier(3, 32, 32, 10, torch.Generator().manual_seed(0)).eval()
        compute = lambda x: torch.no_grad()(classifier.features)(x)  # noqa: E731
    benchmark.group = "feature extraction (3x32x32)"
    benchmark.extra_info.update(features=features, images=n, threads=threads)
    x = cifar_images(n)
    out = benchmark.pedantic(compute, args=(x,), rounds=1 if benchmark.disabled else 3, iterations=1)
    first = out[0] if isinstance(out, tuple) else out
    assert len(first) == n and torch.isfinite(first).all()
