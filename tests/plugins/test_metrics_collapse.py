"""Sample estimates of the exact-density metrics on generators that collapse, against quadrature.

Each generator is a Gaussian mixture, so its density is known and the divergences to the data are
integrated on a grid (:func:`divergences_quadrature`; trapezoid rule with a spacing of at most 1.5
times the narrowest std). Cases: a subset of the data's modes, modes far narrower than the data's,
tight clusters with a few samples spread around the modes (the shape that drove the former
leave-one-out KDE's JSD to -3.5 on the ring), a single point (all samples equal) and samples off
the support. KL(p_data || p_g) with dropped modes is a tail extrapolation (the generator's density
dozens of its stds from any sample): only its size is checked there.
"""

import math

import pytest
import torch

from benchbench import Evaluation
from benchbench_plugins.datasets.mixtures import Gaussian1d, Ring
from benchbench_plugins.metrics.density import KDEDivergence, LogLikelihood, divergences_quadrature
from benchbench_plugins.metrics.modes import ModeCoverage

LOG2 = math.log(2)
N = 2500  # the suites' eval.samples


def gen(seed):
    return torch.Generator().manual_seed(seed)


class Mixture:
    """A generator with a known density: isotropic Gaussians (centres [K, d], stds [K], weights [K])."""

    def __init__(self, centers, stds, weights):
        self.centers = torch.as_tensor(centers, dtype=torch.float64)
        self.stds = torch.as_tensor(stds, dtype=torch.float64)
        weights = torch.as_tensor(weights, dtype=torch.float64)
        self.weights = weights / weights.sum()

    def log_prob(self, z):
        d = self.centers.shape[1]
        d2 = ((z.double()[:, None, :] - self.centers[None]) ** 2).sum(-1)
        return torch.logsumexp(-0.5 * d2 / self.stds**2 - d * self.stds.log() - 0.5 * d * math.log(2 * math.pi)
                               + self.weights.log(), dim=1)

    def sample(self, n, seed):
        g = gen(seed)
        k = torch.multinomial(self.weights, n, replacement=True, generator=g)
        noise = torch.randn(n, self.centers.shape[1], generator=g, dtype=torch.float64)
        return (self.centers[k] + self.stds[k, None] * noise).float()


def collapsed(centers, keep, std, spread=0.0, spread_std=None):
    """Modes ``keep`` of ``centers`` with std ``std``, plus a share ``spread`` of samples spread over
    all modes with std ``spread_std``."""
    centers = [c.tolist() for c in centers]
    kept = [centers[k] for k in keep]
    if not spread:
        return Mixture(kept, [std] * len(kept), [1.0] * len(kept))
    return Mixture(kept + centers, [std] * len(kept) + [spread_std] * len(centers),
                   [(1 - spread) / len(kept)] * len(kept) + [spread / len(centers)] * len(centers))


LINE = Gaussian1d(Gaussian1d.Config(means=(-3.0, -1.0, 1.0, 3.0), stds=(0.05,)))
LINE_CENTERS = LINE.modes().centers
LINE_AXES = [torch.linspace(-6, 6, 60_001, dtype=torch.float64)]  # spacing 2e-4
RING = Ring(Ring.Config())  # 8 modes, std 0.01
RING_AXES = [torch.linspace(-1.12, 1.12, 747, dtype=torch.float64)] * 2  # spacing 0.003

LINE_CASES = {
    "2 of 4 modes": collapsed(LINE_CENTERS, [0, 2], 0.05),
    "modes 10x narrower": collapsed(LINE_CENTERS, range(4), 0.005),
    "2 narrow modes + 2% spread": collapsed(LINE_CENTERS, [0, 2], 0.005, 0.02, 0.05),
    "narrow modes + 1% wide": collapsed(LINE_CENTERS, range(4), 0.0025, 0.01, 0.15),
    "off the support": Mixture([[0.0]], [0.1], [1.0]),
}
RING_CASES = {
    "3 of 8 modes": collapsed(RING.modes().centers, [0, 3, 5], 0.01),
    "modes 5x narrower": collapsed(RING.modes().centers, range(8), 0.002),
    "3 narrow modes + 2% spread": collapsed(RING.modes().centers, [0, 3, 5], 0.002, 0.02, 0.01),
    "narrow modes + 1% wide": collapsed(RING.modes().centers, range(8), 0.002, 0.01, 0.03),
}
CASES = [("line", LINE, name, q, LINE_AXES) for name, q in LINE_CASES.items()] + [
    ("ring", RING, name, q, RING_AXES) for name, q in RING_CASES.items()]
IDS = [f"{d}: {name}" for d, _, name, _, _ in CASES]
# the generator covers every mode, so KL(p_data || p_g) is finite and moderate
COVERING = {"narrow modes + 1% wide", "2 narrow modes + 2% spread", "3 narrow modes + 2% spread"}


def estimate(dataset, fake, seed=0):
    real = dataset.sample(N, gen(1))
    return KDEDivergence(KDEDivergence.Config()).compute(Evaluation(real, fake, dataset, seed))


def integral(values, axes):
    """Trapezoid rule over the tensor-product grid of ``axes`` (values shaped like the grid)."""
    for axis in reversed(axes):
        values = torch.trapezoid(values, axis, dim=-1)
    return float(values)


def exact_values(dataset, q, axes):
    """Quadrature: the three divergences, E_q log p_data and KL(mode masses of q || uniform)."""
    exact = divergences_quadrature(dataset.log_prob, q.log_prob, axes)
    shape = [len(a) for a in axes]
    mesh = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    density = q.log_prob(mesh).exp()
    exact["log_likelihood"] = integral((density * dataset.log_prob(mesh).double()).reshape(shape), axes)
    nearest = torch.cdist(mesh, dataset.modes().centers.double()).argmin(1)
    h = torch.tensor([integral((density * (nearest == k)).reshape(shape), axes)
                      for k in range(len(dataset.modes().centers))], dtype=torch.float64)
    h = h / h.sum()
    exact["mode_kl"] = float(torch.where(h > 0, h * (h * len(h)).log(), torch.zeros_like(h)).sum())
    return exact


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def case(request):
    kind, dataset, name, q, axes = request.param
    return name, dataset, q, exact_values(dataset, q, axes), estimate(dataset, q.sample(N, 7))


def test_jsd_matches_quadrature_and_stays_in_its_range(case):
    # observed |error| <= 0.024 (the former leave-one-out KDE: 0.26-0.28 low with 1% wide samples)
    name, _, _, exact, found = case
    assert 0 <= found["jsd"] <= LOG2
    assert found["jsd"] == pytest.approx(exact["jsd"], abs=0.035)


def test_kl_model_data_matches_quadrature(case):
    # KL(p_g || p_data) is finite in every case here; observed errors 0.5-14% (former: up to 40% low)
    name, _, _, exact, found = case
    assert found["kl_model_data"] == pytest.approx(exact["kl_model_data"], rel=0.2)


def test_kl_data_model_matches_quadrature_where_the_generator_covers_the_modes(case):
    name, _, _, exact, found = case
    if name in COVERING:  # observed errors 1-14% (the former estimate: 1.3x-4.6x too high)
        assert found["kl_data_model"] == pytest.approx(exact["kl_data_model"], rel=0.3)
    else:  # dropped modes or 10x narrower: exact 20-1,800 nats, a tail extrapolation
        assert found["kl_data_model"] > 5 and exact["kl_data_model"] > 5


def test_the_former_failure_is_in_range():
    # ring, 8 modes of std 0.0005 and 1% of the samples with std 0.03: the former leave-one-out KDE
    # gave JSD = -3.5 and KL(p_g || p_data) = -3.8
    q = collapsed(RING.modes().centers, range(8), 0.0005, 0.01, 0.03)
    found = estimate(RING, q.sample(N, 3))
    assert 0.4 < found["jsd"] <= LOG2
    assert found["kl_model_data"] > 2 and found["kl_data_model"] > 2


@pytest.mark.parametrize("dataset", [LINE, RING], ids=["line", "ring"])
def test_a_single_point(dataset):
    # a point mass against a density: JSD = log 2, both KLs infinite
    fake = dataset.modes().centers[:1].repeat(N, 1)
    found = estimate(dataset, fake)
    assert found["jsd"] == pytest.approx(LOG2, abs=1e-3)
    assert found["kl_model_data"] > 8 and found["kl_data_model"] > 1e6  # observed 10.9 (line), 20.2 (ring)


@pytest.mark.parametrize("dataset", [LINE, RING], ids=["line", "ring"])
def test_data_against_itself_is_near_zero(dataset):
    # the finite-sample bias of the estimates (the data reference row): JSD(p, q-hat) >= 0
    found = estimate(dataset, dataset.sample(N, gen(2)))
    assert 0 <= found["jsd"] < 0.04
    assert 0 <= found["kl_model_data"] < 0.2 and 0 <= found["kl_data_model"] < 0.15


def test_log_likelihood_matches_quadrature(case):
    # mean log p_data(generated) against the integral of q log p: a Monte Carlo mean with exact log p
    name, dataset, q, exact, _ = case
    samples = q.sample(10_000, 11)
    found = LogLikelihood(LogLikelihood.Config()).compute(Evaluation(samples, samples, dataset, 0))
    error = float(dataset.log_prob(samples).double().std()) / math.sqrt(len(samples))
    assert found["log_likelihood"] == pytest.approx(exact["log_likelihood"], abs=5 * error + 1e-3)


def test_mode_kl_matches_the_generators_mode_masses(case):
    # KL(histogram of nearest modes || uniform) against the exact mass of q in each mode's cell
    name, dataset, q, exact, _ = case
    samples = q.sample(10_000, 12)
    found = ModeCoverage(ModeCoverage.Config()).compute(Evaluation(samples, samples, dataset, 0))
    assert found["mode_kl"] == pytest.approx(exact["mode_kl"], abs=0.01)
