"""Speed and memory of the image metrics on classifier features of 10,000 real and 10,000 generated
images: FID (Frechet distance of fitted Gaussians), KID (100 subsets of 1,000), the k-NN radii
alone, and precision / recall / density / coverage (one pass, as the ``feature-manifold`` metric
computes them). Features are random non-negative tensors of the classifiers' dimensions: 64 (one
digit) and 192 (stacked digits: three channels' features side by side); speed does not depend on
their values.

Besides the timings, each case records in ``extra_info`` the peak resident memory of one call above
its start (``peak_rss_mb``: Linux, reset through /proc/self/clear_refs, measured in a fresh process
so that no earlier case's freed heap hides it) and the largest tensor any op made
(``largest_tensor_mb``, one more untimed call in this process), next to the size of the [N, N]
float32 matrix that chunked code never builds (``pair_matrix_mb``, 381 MB at N = 10,000); the
largest tensor is asserted to be far below it. With ``--benchmark-enable`` the memory figures are
also printed. In plain test runs (benchmarks disabled) each case runs once on N = 2,000 with 10 KID
subsets, without the RSS measurement. Threads: one, as each of benchbench's worker processes has
(two threads on two busy cores made KID 4-15x slower), or $BENCHBENCH_THREADS.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from benchbench.train.timing import peak_memory, reset_peak_memory
from benchbench_plugins.metrics.images import fid_from_features, kid, manifold_from_features
from benchbench_plugins.metrics.manifold import knn_radii2

SAMPLES, SUBSETS = 10_000, 100
SMOKE_SAMPLES, SMOKE_SUBSETS = 2_000, 10  # benchmarks disabled: a plain test run only checks that each case works
THREADS = int(os.environ.get("BENCHBENCH_THREADS", 1))  # one, as in each of benchbench's worker processes
MB = 2**20


def features(n, dim, seed):
    """``n`` non-negative features ``[n, dim]`` of order 1, like the classifiers' scaled ReLU outputs."""
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed)).relu_().mul_(1.7)


def cases(real, fake, subsets):
    """name -> the call a metric makes on these features (KID: ``subsets`` subsets of 1,000)."""
    return {
        "fid": lambda: fid_from_features(real, fake),
        "kid": lambda: kid(real, fake, subsets, 1000, torch.Generator().manual_seed(0)),
        "knn-radii": lambda: knn_radii2(real, (3, 5)),
        "precision-recall-density-coverage": lambda: manifold_from_features(real, fake),
    }


class LargestTensor(TorchDispatchMode):
    """Records the most bytes of any tensor an aten op returns while active."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        sizes = [t.numel() * t.element_size() for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        self.bytes = max([self.bytes, *sizes])
        return out


def resident_bytes() -> int | None:
    """The process's current resident set size (Linux), else None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def largest_tensor_mb(fn) -> float:
    """The largest tensor ``fn()`` made, MB."""
    with LargestTensor() as mode:
        fn()
    return mode.bytes / MB


def peak_rss_mb(case: str, dim: int, n: int, subsets: int) -> float | None:
    """Peak resident memory of one call of ``case`` above the start of the call, MB, measured in a
    fresh process (this one's heap holds what earlier cases freed); None where the peak cannot be reset."""
    result = subprocess.run([sys.executable, __file__, case, str(dim), str(n), str(subsets), str(THREADS)],
                            capture_output=True, text=True, timeout=600, check=True)
    value = json.loads(result.stdout.strip().splitlines()[-1])
    return None if value is None else value / MB


def measure_peak_rss(case: str, dim: int, n: int, subsets: int) -> int | None:
    """In this process: bytes of resident memory one call adds at its peak, after a warm-up call on
    small inputs (libraries loaded, thread pools started)."""
    small = features(1000, dim, 0), features(1000, dim, 1)  # KID needs its 1,000 per subset
    cases(*small, 1)[case]()
    real, fake = features(n, dim, 0), features(n, dim, 1) + 0.05
    fn = cases(real, fake, subsets)[case]
    cpu = torch.device("cpu")
    reset_peak_memory(cpu)
    start = resident_bytes()
    fn()
    peak, _ = peak_memory(cpu)
    return peak - start if start is not None and peak is not None and peak >= start else None


@pytest.fixture
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield THREADS
    torch.set_num_threads(before)


MEMORY: list[str] = []  # lines printed at the end of an enabled run


@pytest.fixture(scope="module", autouse=True)
def print_memory(request):
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if MEMORY and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # past the output capture, as pytest's own reports
            reporter.write_line("")
            reporter.write_line("image metrics, memory above the start of the call:")
            for line in MEMORY:
                reporter.write_line(line)


@pytest.mark.parametrize("dim", [64, 192])
@pytest.mark.parametrize("case", ["fid", "kid", "knn-radii", "precision-recall-density-coverage"])
def test_image_metric(benchmark, threads, case, dim):
    n, subsets = (SMOKE_SAMPLES, SMOKE_SUBSETS) if benchmark.disabled else (SAMPLES, SUBSETS)
    real, fake = features(n, dim, 0), features(n, dim, 1) + 0.05
    fn = cases(real, fake, subsets)[case]
    benchmark.group = f"image metrics, {dim}-d features"
    benchmark.pedantic(fn, rounds=3 if case in ("knn-radii", "precision-recall-density-coverage") else 5,
                       iterations=1, warmup_rounds=1)
    pair_matrix_mb = n * n * 4 / MB
    largest = largest_tensor_mb(fn)  # after the timed rounds: the dispatch mode slows and bloats the heap
    # chunked: no tensor near the [n, n] matrix (the largest are the inputs and their float64 copies)
    assert largest <= max(2 * n * dim * 4 / MB, 2.0) < pair_matrix_mb / 4
    rss = None if benchmark.disabled else peak_rss_mb(case, dim, n, subsets)
    benchmark.extra_info.update(samples=n, dim=dim, threads=threads, pair_matrix_mb=pair_matrix_mb,
                                largest_tensor_mb=largest, peak_rss_mb=rss,
                                **({"kid_subsets": subsets} if case == "kid" else {}))
    if not benchmark.disabled:
        shown = "n/a" if rss is None else f"{rss:.1f} MB"
        MEMORY.append(f"  {case} ({dim}-d, N={n}): peak RSS +{shown}, largest tensor {largest:.1f} MB "
                      f"(an N x N float32 matrix: {pair_matrix_mb:.0f} MB)")


if __name__ == "__main__":  # peak_rss_mb's child process: CASE DIM N SUBSETS THREADS
    torch.set_num_threads(int(sys.argv[5]))
    print(json.dumps(measure_peak_rss(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))))
