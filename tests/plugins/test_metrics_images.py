"""The image metrics' math against closed forms and brute-force references (KID, the classifier
score, stacked modes, FID and k-NN manifolds on features), the metric classes on tiny image
datasets with a stand-in feature extractor (no classifier is trained here), and the chunked
kernel / distance sums, which must never hold an [n, m] matrix."""

import math
import os
import subprocess
import sys

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from benchbench import Evaluation, Unavailable
from benchbench_plugins import features as fe
from benchbench_plugins.datasets.images import Digits, StackedDigits
from benchbench_plugins.datasets.mixtures import Ring
from benchbench_plugins.metrics import distances
from benchbench_plugins.metrics import images as im
from benchbench_plugins.metrics.frechet import frechet_from_samples
from benchbench_plugins.metrics.manifold import knn_radii2, manifold_scores
from benchbench_plugins.metrics.parzen import parzen_log_densities

DIGITS = Digits(Digits.Config())
STACKED = StackedDigits(StackedDigits.Config(size=300, test_size=200))


def gen(seed):
    return torch.Generator().manual_seed(seed)


def cubic_kernel_matrix(x, y):
    """(x.y/d + 1)^3 written out on the full matrix."""
    return (x @ y.T / x.shape[1] + 1) ** 3


def biased_mmd2(x, y):
    """The V-statistic: plain means of the full kernel matrices, diagonals included (>= 0)."""
    return float(cubic_kernel_matrix(x, x).mean() + cubic_kernel_matrix(y, y).mean()
                 - 2 * cubic_kernel_matrix(x, y).mean())


# ---- KID -------------------------------------------------------------------------------------

def test_kid_mmd2_matches_a_double_loop():
    x = torch.randn(7, 5, generator=gen(0), dtype=torch.float64)
    y = torch.randn(9, 5, generator=gen(1), dtype=torch.float64) + 0.5

    def k(a, b):
        return (float(a @ b) / 5 + 1) ** 3
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / (7 * 6)
    yy = sum(k(y[i], y[j]) for i in range(9) for j in range(9) if i != j) / (9 * 8)
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(9)) / (7 * 9)
    assert im.kid_mmd2(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


@pytest.mark.parametrize("degree, coef", [(3, 1.0), (2, 0.5), (1, 0.0)])
def test_polynomial_kernel_sum_over_pairs_and_without_the_diagonal(degree, coef):
    x = torch.randn(40, 6, generator=gen(0), dtype=torch.float64)
    y = torch.randn(30, 6, generator=gen(1), dtype=torch.float64)
    full = (x @ y.T / 6 + coef) ** degree
    within = (x @ x.T / 6 + coef) ** degree
    assert float(im.polynomial_kernel_sum(x, y, degree, coef)) == pytest.approx(float(full.sum()), rel=1e-12)
    assert float(im.polynomial_kernel_sum(x, None, degree, coef)) == pytest.approx(
        float(within.sum() - within.diagonal().sum()), rel=1e-12)


def test_kid_of_a_set_with_itself_is_minus_twice_its_diagonal_excess_over_n():
    # unbiased MMD^2(x, x) = 2/n (mean_{i!=j} k(x_i, x_j) - mean_i k(x_i, x_i)): O(1/n), not 0;
    # the biased estimate of a set with itself is exactly 0
    x = torch.randn(200, 16, generator=gen(0), dtype=torch.float64).relu()
    k = cubic_kernel_matrix(x, x)
    off = (k.sum() - k.diagonal().sum()) / (200 * 199)
    expected = 2 / 200 * float(off - k.diagonal().mean())
    assert im.kid_mmd2(x, x) == pytest.approx(expected, rel=1e-9)
    assert expected < 0 and abs(expected) < 0.1 * float(k.mean())
    assert biased_mmd2(x, x) == pytest.approx(0, abs=1e-9)


def test_kid_is_unbiased_where_the_biased_estimate_is_positive():
    # many pairs of independent samples of one distribution: the unbiased MMD^2 averages to 0, the
    # V-statistic (diagonals included) is positive on every draw
    g = gen(0)
    unbiased, biased = [], []
    for _ in range(1000):
        x = torch.randn(20, 8, generator=g, dtype=torch.float64)
        y = torch.randn(20, 8, generator=g, dtype=torch.float64)
        unbiased.append(im.kid_mmd2(x, y))
        biased.append(biased_mmd2(x, y))
    unbiased, biased = torch.tensor(unbiased), torch.tensor(biased)
    se = float(unbiased.std() / math.sqrt(len(unbiased)))
    assert abs(float(unbiased.mean())) < 3 * se  # observed: 0.3 se; the biased mean: 137 se
    assert (unbiased < 0).any() and (biased > 0).all()
    assert float(biased.mean()) > 20 * se


def test_kid_grows_with_a_shift():
    g = gen(0)
    x = torch.randn(500, 16, generator=g)
    values = [im.kid_mmd2(x, torch.randn(500, 16, generator=g) + shift) for shift in (0.0, 0.1, 0.3, 1.0)]
    assert abs(values[0]) < values[1] < values[2] < values[3]


def test_kid_subsets_are_seeded_and_a_full_size_subset_is_the_whole_set():
    real = torch.randn(60, 8, generator=gen(0), dtype=torch.float64)
    fake = torch.randn(80, 8, generator=gen(1), dtype=torch.float64) + 0.2
    a, b = im.kid(real, fake, 5, 30, gen(7)), im.kid(real, fake, 5, 30, gen(7))
    assert a.shape == (5,) and a.dtype == torch.float64 and torch.equal(a, b)
    assert not torch.equal(a, im.kid(real, fake, 5, 30, gen(8)))
    assert len(set(a.tolist())) == 5  # distinct random subsets
    # size = both counts: every subset is a permutation of the whole set, which MMD^2 ignores
    whole = im.kid(real[:60], fake[:60], 3, 60, gen(0))
    torch.testing.assert_close(whole, torch.full((3,), im.kid_mmd2(real[:60], fake[:60]), dtype=torch.float64))


def test_kid_rejects_a_subset_larger_than_the_samples():
    real, fake = torch.randn(40, 4, generator=gen(0)), torch.randn(30, 4, generator=gen(1))
    with pytest.raises(AssertionError, match="subset size 31 for 40 and 30 samples"):
        im.kid(real, fake, 2, 31, gen(0))


# ---- classifier score, joint classes, stacked modes -----------------------------------------

def one_hot(labels, classes):
    return torch.nn.functional.one_hot(labels, classes).double()


def test_classifier_score_is_k_for_confident_uniform_predictions():
    labels = torch.arange(10).repeat(20)  # each split of 20 holds every class twice
    assert im.classifier_score(one_hot(labels, 10), splits=10) == pytest.approx(10, rel=1e-12)


def test_classifier_score_is_one_for_a_constant_prediction():
    assert im.classifier_score(torch.full((50, 4), 0.25, dtype=torch.float64), splits=5) == pytest.approx(1)
    confident_constant = one_hot(torch.full((50,), 2), 4)  # every image the same class
    assert im.classifier_score(confident_constant, splits=5) == pytest.approx(1)


def test_classifier_score_hand_computed_and_averaged_over_splits():
    p = torch.tensor([[0.9, 0.1], [0.1, 0.9]], dtype=torch.float64)  # p(y) = (1/2, 1/2)
    kl = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)
    assert im.classifier_score(p, splits=1) == pytest.approx(math.exp(kl), rel=1e-12)
    # splits are consecutive; the score is the mean of the splits' scores (not exp of a mean)
    two = torch.cat([one_hot(torch.tensor([0, 1]), 2), one_hot(torch.tensor([0, 0]), 2)])
    assert im.classifier_score(two, splits=2) == pytest.approx((2 + 1) / 2)


def test_joint_probabilities_multiply_channels_at_index_sum_of_label_powers():
    p = torch.tensor([[[0.2, 0.8], [0.6, 0.4]]], dtype=torch.float64)  # one image, C = 2, K = 2
    joint = im.joint_probabilities(p)[0]
    for y0 in range(2):
        for y1 in range(2):
            assert float(joint[y0 + 2 * y1]) == pytest.approx(float(p[0, 0, y0] * p[0, 1, y1]))
    labels = torch.randint(10, (50, 3), generator=gen(0))
    joint = im.joint_probabilities(one_hot(labels, 10))
    assert joint.shape == (50, 1000)
    assert torch.equal(joint.argmax(1), im.modes_of(labels, 10)) and torch.equal(joint.sum(1), torch.ones(50).double())


def test_classifier_score_of_channels_is_the_score_of_the_joint_classes():
    p = torch.rand(40, 2, 3, generator=gen(0), dtype=torch.float64).softmax(-1)
    assert im.classifier_score(p, splits=4) == pytest.approx(im.classifier_score(im.joint_probabilities(p), splits=4))


def test_modes_of_is_the_base_k_number_of_the_channel_labels():
    assert im.modes_of(torch.tensor([[1, 2, 3], [9, 9, 9], [0, 0, 0]]), 10).tolist() == [321, 999, 0]
    every = torch.cartesian_prod(torch.arange(4), torch.arange(4), torch.arange(4))
    assert sorted(im.modes_of(every, 4).tolist()) == list(range(64))  # a bijection onto 0..K^C - 1


def all_triples():
    return torch.cartesian_prod(torch.arange(10), torch.arange(10), torch.arange(10))


def test_stacked_modes_all_modes_equally_give_zero_kl():
    stats = im.stacked_mode_statistics(all_triples().repeat(2, 1), 10)
    assert stats == {im.MODES: 1000.0, im.MODE_KL: pytest.approx(0, abs=1e-12)}


def test_stacked_modes_one_mode_gives_log_1000():
    stats = im.stacked_mode_statistics(torch.tensor([[3, 1, 4]]).repeat(500, 1), 10)
    assert stats == {im.MODES: 1.0, im.MODE_KL: pytest.approx(math.log(1000), rel=1e-12)}


def test_stacked_modes_half_the_modes_give_log_2():
    half = all_triples()[all_triples()[:, 0] < 5]
    assert im.stacked_mode_statistics(half, 10) == {im.MODES: 500.0, im.MODE_KL: pytest.approx(math.log(2))}


# ---- FID and manifolds on features ----------------------------------------------------------

@pytest.mark.parametrize("n_real, n_fake", [(64, 500), (500, 64), (10, 10)])
def test_fid_is_unavailable_unless_both_sets_exceed_the_feature_dims(n_real, n_fake):
    real, fake = torch.randn(n_real, 64, generator=gen(0)), torch.randn(n_fake, 64, generator=gen(1))
    value = im.fid_from_features(real, fake)
    assert isinstance(value, Unavailable)
    assert f"{n_real} real, {n_fake} generated" in value.reason and "64" in value.reason


def test_fid_with_one_more_sample_than_dims_is_the_frechet_distance():
    real, fake = torch.randn(65, 64, generator=gen(0)), torch.randn(65, 64, generator=gen(1)) + 1
    value = im.fid_from_features(real, fake)
    assert value == frechet_from_samples(real, fake) and value > 60  # the mean shift: 64 +- noise


@pytest.mark.parametrize("n_real, n_fake", [(5, 100), (100, 3)])
def test_feature_manifold_is_unavailable_for_too_few_points(n_real, n_fake):
    values = im.manifold_from_features(torch.randn(n_real, 64), torch.randn(n_fake, 64))
    assert set(values) == {im.PRECISION, im.RECALL, im.DENSITY, im.COVERAGE}
    assert all(isinstance(v, Unavailable) and "k-NN radii" in v.reason for v in values.values())
    assert all(isinstance(v, float) for v in im.manifold_from_features(torch.randn(6, 64), torch.randn(4, 64)).values())


def features_like(n, seed, d=64):
    """Non-negative features of order 1, like the classifier's scaled ReLU features."""
    return torch.randn(n, d, generator=gen(seed)).relu() * 1.7


def test_feature_manifold_of_identical_sets_in_feature_dims():
    x = features_like(400, 0)
    values = im.manifold_from_features(x, x.clone())
    assert values[im.PRECISION] == values[im.RECALL] == values[im.COVERAGE] == 1.0
    assert values[im.DENSITY] == pytest.approx(6 / 5)  # each ball holds its centre and its 5 neighbours


def test_feature_manifold_ties_in_feature_dims_still_count():
    # 6 copies of each point: every radius is 0 (the k-th neighbour is a copy); the 64-d distances
    # come from |x|^2 + |y|^2 - 2 x.y, whose round-off must not push copies outside radius 0
    base = features_like(300, 0)
    real = base.repeat(6, 1)
    fake = base.repeat(6, 1)[torch.randperm(1800, generator=gen(1))]
    values = im.manifold_from_features(real, fake)
    assert values[im.PRECISION] == values[im.RECALL] == values[im.COVERAGE] == 1.0
    assert values[im.DENSITY] == pytest.approx(6 / 5)  # each real ball holds its 6 copies among the fakes


def test_feature_manifold_of_disjoint_sets_is_zero():
    values = im.manifold_from_features(features_like(300, 0), features_like(300, 1) + 50)
    assert values == {im.PRECISION: 0.0, im.RECALL: 0.0, im.DENSITY: 0.0, im.COVERAGE: 0.0}


def test_feature_manifold_of_nested_sets_has_precision_without_recall():
    # reals: 10 far-apart clusters of 100; fakes: exactly the reals of one cluster
    centres = 10 * torch.randn(10, 64, generator=gen(0))
    real = (centres[:, None] + torch.randn(10, 100, 64, generator=gen(1))).reshape(1000, 64)
    fake = real[:100].clone()
    values = im.manifold_from_features(real, fake)
    assert values[im.PRECISION] == 1.0
    assert values[im.RECALL] == values[im.COVERAGE] == 0.1
    assert values[im.DENSITY] == pytest.approx(6 / 5)  # each ball of the cluster: its centre and 5 neighbours
    scores = manifold_scores(real, fake)  # the same numbers, under this module's names
    assert values == {im.PRECISION: scores["precision"], im.RECALL: scores["recall"],
                      im.DENSITY: scores["density"], im.COVERAGE: scores["coverage"]}


# ---- the metric classes, with a stand-in extractor --------------------------------------------

def stand_in_extractor(dataset, accuracy=0.9):
    """An untrained classifier of the dataset's image shape: the metrics' plumbing without training."""
    train = dataset.split("train")
    channels = train.labels.shape[1] if train.labels.ndim == 2 else None
    net = fe.ConvClassifier(1 if channels else dataset.shape[0], *dataset.shape[1:], train.classes, gen(0))
    return fe.FeatureExtractor(net.eval().requires_grad_(False), train.classes, channels, accuracy, 0.5,
                               key=f"stand-in-{dataset.name}-{accuracy}")


@pytest.fixture
def stand_in(monkeypatch):
    made = {}

    def extractor(dataset, seed=0):
        return made.setdefault(dataset.name, stand_in_extractor(dataset))
    monkeypatch.setattr(im, "extractor", extractor)
    return extractor


def evaluation(dataset, n_real, n_fake):
    real = dataset.split("test").x[:n_real]
    fake = dataset.split("train").x[torch.randperm(len(dataset.split("train").x), generator=gen(1))[:n_fake]]
    return Evaluation(real, fake, dataset, seed=0)


METRICS = [im.FeatureFrechet, im.KernelInception, im.FeatureManifold, im.ClassifierScore, im.StackedModes,
           im.ClassifierAccuracy]


@pytest.mark.parametrize("dataset", [DIGITS, STACKED], ids=["digits", "stacked-digits"])
@pytest.mark.parametrize("metric_cls", METRICS, ids=lambda c: c.name)
def test_metric_returns_exactly_its_declared_outputs(stand_in, metric_cls, dataset):
    ev = evaluation(dataset, 200, 200)
    metric = metric_cls(metric_cls.Config())
    if metric_cls is im.StackedModes and dataset is DIGITS:
        assert not metric.applies(ev)
        return
    assert metric.applies(ev)
    values = metric.compute(ev)
    assert set(values) == {o.name for o in metric.outputs} <= {o.name for o in metric_cls.outputs}
    assert not any("inception" in name for name in values)  # classifier features: the default
    assert all(type(v) is float or isinstance(v, Unavailable) for v in values.values())


def test_feature_metrics_do_not_apply_without_a_train_split():
    ring = Ring(Ring.Config())
    ev = Evaluation(ring.sample(100, gen(0)), ring.sample(100, gen(1)), ring, seed=0)
    assert not any(cls(cls.Config()).applies(ev) for cls in METRICS)


def test_metrics_compute_the_pure_functions_on_the_extractors_features(stand_in):
    ev = evaluation(STACKED, 200, 250)
    features = stand_in(STACKED).features
    real, fake = features(ev.real), features(ev.fake)
    assert real.shape == (200, 3 * fe.FEATURES)
    assert im.FeatureFrechet(im.FeatureFrechet.Config()).compute(ev) == {im.FID: im.fid_from_features(real, fake)}
    assert im.FeatureManifold(im.FeatureManifold.Config()).compute(ev) == im.manifold_from_features(real, fake)
    labels = stand_in(STACKED).labels(ev.fake)
    assert im.StackedModes(im.StackedModes.Config()).compute(ev) == im.stacked_mode_statistics(labels, 10)
    kid = im.KernelInception(im.KernelInception.Config(subsets=4)).compute(ev)
    values = im.kid(real, fake, 4, 200, ev.generator(salt=3))
    assert kid == {im.KID: float(values.mean()), im.KID_STD: float(values.std(correction=0)), im.KID_SUBSET: 200.0}


@pytest.mark.parametrize("n_real, n_fake, subset_size, expected", [
    (300, 300, 100, 100.0),  # enough samples: the configured size
    (120, 300, 1000, 120.0),  # fewer real than the subset size: the smaller count
    (300, 80, 1000, 80.0),  # fewer generated
])
def test_kid_subset_size_follows_the_sample_counts(stand_in, n_real, n_fake, subset_size, expected):
    ev = evaluation(DIGITS, n_real, n_fake)
    values = im.KernelInception(im.KernelInception.Config(subsets=3, subset_size=subset_size)).compute(ev)
    assert values[im.KID_SUBSET] == expected
    assert isinstance(values[im.KID], float) and values[im.KID_STD] >= 0


def test_kid_of_sets_no_larger_than_a_subset_is_one_value_without_a_spread(stand_in):
    # every subset would be the two whole sets: their MMD^2 once, and no std to report
    ev = evaluation(DIGITS, 120, 120)
    values = im.KernelInception(im.KernelInception.Config(subset_size=1000)).compute(ev)
    features = stand_in(DIGITS).features
    assert values[im.KID] == im.kid_mmd2(features(ev.real), features(ev.fake)) and values[im.KID_SUBSET] == 120.0
    assert isinstance(values[im.KID_STD], Unavailable) and "whole" in values[im.KID_STD].reason


def test_kid_is_unavailable_below_the_minimum_subset_size(stand_in):
    ev = evaluation(DIGITS, 300, 49)
    values = im.KernelInception(im.KernelInception.Config(min_subset_size=50)).compute(ev)
    assert values[im.KID_SUBSET] == 49.0
    for key in (im.KID, im.KID_STD):
        assert isinstance(values[key], Unavailable) and "300 real, 49 generated" in values[key].reason
    assert isinstance(im.KernelInception(im.KernelInception.Config(min_subset_size=49)).compute(ev)[im.KID], float)


def test_classifier_score_is_unavailable_with_fewer_images_per_split_than_classes(stand_in):
    score = im.ClassifierScore(im.ClassifierScore.Config(splits=10))
    assert isinstance(score.compute(evaluation(DIGITS, 50, 99))[im.SCORE], Unavailable)  # 9 per split < 10
    value = score.compute(evaluation(DIGITS, 50, 100))[im.SCORE]
    assert 1 - 1e-12 <= value <= 10
    stacked = score.compute(evaluation(STACKED, 50, 200))[im.SCORE]  # 20 per split < 1,000 joint classes
    assert isinstance(stacked, Unavailable) and "1000 classes" in stacked.reason


def test_classifier_accuracy_is_the_extractors_or_unavailable_without_a_test_split(monkeypatch):
    ev = evaluation(DIGITS, 50, 50)
    metric = im.ClassifierAccuracy(im.ClassifierAccuracy.Config())
    monkeypatch.setattr(im, "extractor", lambda dataset, seed=0: stand_in_extractor(dataset, accuracy=0.97))
    assert metric.compute(ev) == {im.ACCURACY: 0.97}
    monkeypatch.setattr(im, "extractor", lambda dataset, seed=0: stand_in_extractor(dataset, accuracy=math.nan))
    assert isinstance(metric.compute(ev)[im.ACCURACY], Unavailable)


# ---- chunking: never an [n, m] matrix ---------------------------------------------------------

class LargestTensor(TorchDispatchMode):
    """Records the most elements of any tensor an aten op returns while active."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.numel = max([self.numel] + [t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)])
        return out


def largest_tensor(fn):
    """(fn(), the most elements of a tensor made while it ran)."""
    with LargestTensor() as mode:
        result = fn()
    return result, mode.numel


def chunked_sums(x, y):
    """Each function that sums over all pairs of ``x`` and ``y`` by row blocks, as a number or tensor."""
    sigmas = torch.tensor([0.5, 2.0], dtype=torch.float64)
    return {
        "polynomial_kernel_sum": lambda: im.polynomial_kernel_sum(x, y),
        "polynomial_kernel_sum within": lambda: im.polynomial_kernel_sum(x),
        "kid_mmd2": lambda: im.kid_mmd2(x, y),
        "knn_radii2": lambda: torch.stack(knn_radii2(x, (3, 5))),
        "manifold_scores": lambda: manifold_scores(x, y),
        "gaussian_kernel_sum": lambda: distances.gaussian_kernel_sum(x, y, [1.0, 4.0]),
        "mean_distance": lambda: distances.mean_distance(x),
        "parzen_log_densities": lambda: parzen_log_densities(x, y, sigmas),
    }


@pytest.mark.parametrize("d", [8, 64])  # the coordinate-difference and the matrix-product distances
def test_pair_sums_never_hold_more_than_a_block(d):
    n = 1500  # n^2 = 2.25M entries, 4x a block
    x, y = features_like(n, 0, d), features_like(n, 1, d)
    assert n * n > 4 * distances.BLOCK_ENTRIES >= 4 * n * d
    for name, fn in chunked_sums(x, y).items():
        _, numel = largest_tensor(fn)
        assert numel <= distances.BLOCK_ENTRIES, f"{name} made a tensor of {numel} elements"


def test_pair_sums_by_small_blocks_equal_one_pass(monkeypatch):
    x = features_like(230, 0).double()
    y = features_like(170, 1).double()
    monkeypatch.setattr(distances, "BLOCK_ENTRIES", 1 << 30)  # one block
    whole = {name: fn() for name, fn in chunked_sums(x, y).items()}
    monkeypatch.setattr(distances, "BLOCK_ENTRIES", 1000)  # blocks of 4 to 5 rows
    assert len(distances.row_blocks(230, 230)) == 58
    for name, fn in chunked_sums(x, y).items():
        result, numel = largest_tensor(fn)
        assert numel <= 230 * 64, name  # no more than the inputs: no pair matrix
        if isinstance(result, dict):
            assert result == pytest.approx(whole[name], rel=1e-12), name
        else:
            torch.testing.assert_close(torch.as_tensor(result), torch.as_tensor(whole[name]), rtol=1e-12, atol=0,
                                       msg=name)


@pytest.mark.parametrize("same", [True, False], ids=["within", "between"])
def test_distance_blocks_in_feature_dims_equal_the_full_matrix(same):
    # above 16 dims the blocks use the expansion with the norms computed once for all blocks
    x = features_like(1500, 0)
    y = None if same else features_like(500, 1)
    blocks = list(distances.distance_blocks(x, y))
    assert len(blocks) == (5 if same else 2)  # rows of 2^19 / m entries
    full = torch.cat([d2 for _, d2 in blocks])
    exact = torch.cdist(x.double(), (x if same else y).double()) ** 2
    if same:
        assert (full.diagonal() == 0).all()
        exact.fill_diagonal_(0)
    torch.testing.assert_close(full.double(), exact, rtol=1e-5, atol=1e-4)
    assert (full >= 0).all()


PEAK_CHILD = """
import torch
from benchbench.train.timing import peak_memory, reset_peak_memory
from benchbench_plugins.metrics.manifold import knn_radii2
torch.set_num_threads(1)
features = lambda n, seed: torch.randn(n, 192, generator=torch.Generator().manual_seed(seed)).relu_()
knn_radii2(features(1000, 0), (3, 5))  # warm-up: libraries loaded, the heap as after earlier metrics
x = features(10_000, 1)
rss = lambda: int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS:")).split()[1]) * 1024
reset_peak_memory(torch.device("cpu"))
start = rss()
for _ in range(3):
    knn_radii2(x, (3, 5))
print((peak_memory(torch.device("cpu"))[0] - start) / 2**20)
"""


@pytest.mark.slow
@pytest.mark.skipif(not os.access("/proc/self/clear_refs", os.W_OK), reason="needs Linux's resettable peak RSS")
def test_knn_radii_of_10000_points_keep_the_process_small():
    # the radii of each block were once kept as a list of small tensors between the blocks' large
    # temporaries: the heap fragmented and the process grew by 260-390 MB in most runs (the [n, n]
    # float32 matrix is 381 MB); written into one tensor it grows by ~10 MB
    result = subprocess.run([sys.executable, "-c", PEAK_CHILD], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    grown_mb = float(result.stdout.split()[-1])
    assert grown_mb < 64, f"knn_radii2 at n = 10,000 grew the process by {grown_mb:.0f} MB"
