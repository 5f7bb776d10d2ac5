"""Sample quality of image generators, measured on the features of a classifier trained on the
dataset's own train split (:mod:`benchbench_plugins.features`; the role Inception-v3 plays for FID
and KID on ImageNet-scale data). They apply to datasets with splits; there they replace the
pixel-space ``frechet`` and ``manifold`` metrics.

- ``fid``: Frechet distance between Gaussians fitted to the real and generated features
  (:func:`benchbench_plugins.metrics.frechet.frechet_from_samples`: eigenvalues, not sqrtm).
- ``kid``: Binkowski et al. 2018: unbiased MMD^2 with k(x, y) = (x.y/d + 1)^3, mean and std
  over random subsets (100 of 1,000 by default; fewer when there are fewer samples; when both sets
  are no larger than a subset, the one value on the whole sets, without a std).
- ``feature-manifold``: k-NN precision / recall (k=3) and density / coverage (k=5)
  (:func:`benchbench_plugins.metrics.manifold.manifold_scores`).
- ``classifier-score``: the Inception score's formula exp(E_x KL(p(y|x) || p(y))) with our
  classifier, averaged over splits; for a stacked dataset, over the joint classes (K^C).
- ``stacked-modes``: stacked datasets (Stacked MNIST protocol, PacGAN): modes (channel-label
  tuples) hit by the generated samples, and KL(mode histogram || uniform).
- ``classifier-accuracy``: the test accuracy of the classifier behind the numbers above.

Outputs that the sample sizes cannot support honestly are :class:`Unavailable` (Frechet with
n <= feature dims, k-NN with n <= k, a score split smaller than the number of classes).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from benchbench import Evaluation, Metric, Output, Unavailable, hookimpl, param
from benchbench_plugins.features import FeatureExtractor, extractor
from benchbench_plugins.metrics.distances import row_blocks
from benchbench_plugins.metrics.frechet import frechet_from_samples
from benchbench_plugins.metrics.manifold import manifold_scores
from benchbench_plugins.metrics.modes import kl_histogram

FID = "fid"
KID, KID_STD, KID_SUBSET = "kid", "kid_std", "kid_subset_size"
PRECISION, RECALL = "feature_precision", "feature_recall"
DENSITY, COVERAGE = "feature_density", "feature_coverage"
SCORE = "classifier_score"
MODES, MODE_KL = "stacked_modes", "stacked_mode_kl"
ACCURACY = "classifier_accuracy"


# ---- Frechet distance ------------------------------------------------------------------------

def fid_from_features(real: Tensor, fake: Tensor) -> float | Unavailable:
    """Frechet distance of the Gaussians fitted to features ``[n, F]`` and ``[m, F]``; Unavailable
    unless both sets have more samples than dimensions (the covariances would be singular and the
    distance biased far upward)."""
    dims = real.shape[1]
    if min(len(real), len(fake)) <= dims:
        return Unavailable(f"{len(real)} real, {len(fake)} generated samples: need more than {dims} "
                           f"(the feature dimension)")
    return frechet_from_samples(real, fake)


# ---- KID -------------------------------------------------------------------------------------

def polynomial_kernel_sum(x: Tensor, y: Tensor | None = None, degree: int = 3, coef: float = 1.0) -> Tensor:
    """sum_{i,j} (x_i.y_j / d + coef)^degree, float64 scalar, by row blocks (never the [n, m]
    matrix); with ``y`` None, over the pairs i != j within ``x``."""
    other = x if y is None else y
    total = torch.zeros((), dtype=torch.float64, device=x.device)
    for rows in row_blocks(len(x), len(other)):
        block = x[rows] @ other.T
        total += block.div_(x.shape[1]).add_(coef).pow_(degree).sum(dtype=torch.float64)
    if y is None:
        total -= (x.square().sum(1) / x.shape[1] + coef).double().pow(degree).sum()
    return total


def kid_mmd2(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 of ``x`` ``[n, d]`` and ``y`` ``[m, d]`` (n, m >= 2) with the cubic polynomial
    kernel k(a, b) = (a.b / d + 1)^3: sum_{i!=j} k(x_i,x_j)/(n(n-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1))
    - 2 mean k(x_i, y_j)."""
    n, m = len(x), len(y)
    return float(polynomial_kernel_sum(x) / (n * (n - 1)) + polynomial_kernel_sum(y) / (m * (m - 1))
                 - 2 * polynomial_kernel_sum(x, y) / (n * m))


def kid(real: Tensor, fake: Tensor, subsets: int, size: int, generator: torch.Generator) -> Tensor:
    """:func:`kid_mmd2` of ``subsets`` pairs of random subsets of ``size`` real and ``size`` fake
    samples (each drawn without replacement), ``[subsets]`` float64."""
    assert 2 <= size <= min(len(real), len(fake)), f"subset size {size} for {len(real)} and {len(fake)} samples"
    values = []
    for _ in range(subsets):
        rows_real = torch.randperm(len(real), generator=generator)[:size].to(real.device)
        rows_fake = torch.randperm(len(fake), generator=generator)[:size].to(fake.device)
        values.append(kid_mmd2(real[rows_real], fake[rows_fake]))
    return torch.tensor(values, dtype=torch.float64)


# ---- classifier score and stacked modes -------------------------------------------------------

def joint_probabilities(probabilities: Tensor) -> Tensor:
    """p(y | x) over the K^C joint classes ``[n, K^C]`` from independent per-channel p(y_c | x)
    ``[n, C, K]``; joint class = sum_c y_c K^c (as :func:`modes_of`)."""
    joint = probabilities[:, 0]
    for c in range(1, probabilities.shape[1]):
        joint = (probabilities[:, c, :, None] * joint[:, None, :]).flatten(1)
    return joint


def classifier_score(probabilities: Tensor, splits: int = 10) -> float:
    """exp(E_x KL(p(y|x) || p(y))) of p(y|x) ``[n, K]``, p(y) the mean over the split, averaged over
    ``splits`` consecutive splits (the Inception score's formula; float64, 0 log 0 = 0). K for
    confident predictions covering the K classes uniformly, 1 for a constant prediction.
    Per-channel probabilities ``[n, C, K]`` are scored over the joint classes
    (:func:`joint_probabilities`), formed one split at a time."""
    scores = []
    for part in torch.tensor_split(probabilities, splits):
        part = (joint_probabilities(part) if part.ndim == 3 else part).double()
        marginal = part.mean(0, keepdim=True)
        kl = (torch.xlogy(part, part) - torch.xlogy(part, marginal.expand_as(part))).sum(1)
        scores.append(math.exp(float(kl.mean())))
    return sum(scores) / len(scores)


def modes_of(labels: Tensor, classes: int) -> Tensor:
    """The mode of each image, sum_c labels_c * classes^c, ``[n]``, for per-channel labels ``[n, C]``."""
    powers = classes ** torch.arange(labels.shape[1], device=labels.device)
    return (labels.long() * powers).sum(1)


def stacked_mode_statistics(labels: Tensor, classes: int) -> dict[str, float]:
    """``stacked_modes``: distinct modes among per-channel labels ``[n, C]``; ``stacked_mode_kl``:
    KL(mode histogram || uniform over the classes^C modes), nats."""
    modes = classes ** labels.shape[1]
    counts = torch.bincount(modes_of(labels, classes), minlength=modes)
    return {MODES: float((counts > 0).sum()),
            MODE_KL: kl_histogram(counts, torch.ones(modes, dtype=torch.float64))}


# ---- metrics ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    classifier_seed: int = param(0, "seed of the feature classifier's training (cached per dataset and seed)", ge=0)


class FeatureMetric(Metric):
    """A metric on the features of the dataset's classifier: applies to datasets with a train split."""

    Config = FeatureConfig

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.dataset.split("train") is not None

    def extractor(self, evaluation: Evaluation) -> FeatureExtractor:
        return extractor(evaluation.dataset, self.config.classifier_seed)


class FeatureFrechet(FeatureMetric):
    """FID's formula on the classifier's features."""

    name = "fid"
    outputs = (Output(FID, "quality", "lower", "Frechet distance of Gaussians fitted to classifier features of "
                                               "held-out real and generated images (FID's formula)"),)

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        features = self.extractor(evaluation).features
        return {FID: fid_from_features(features(evaluation.real), features(evaluation.fake))}


@dataclasses.dataclass(frozen=True)
class KIDConfig(FeatureConfig):
    subsets: int = param(100, "random subset pairs averaged over (Binkowski et al.: 100)", ge=1)
    subset_size: int = param(1000, "samples per subset (Binkowski et al.: 1,000); reduced to the smaller sample "
                                   "count when there are fewer, see kid_subset_size", ge=2)
    min_subset_size: int = param(50, "below this many samples per subset KID is reported unavailable", ge=2)


class KernelInception(FeatureMetric):
    """KID: unbiased cubic-polynomial-kernel MMD^2 of classifier features over random subsets."""

    name = "kid"
    Config = KIDConfig
    outputs = (
        Output(KID, "quality", "lower", "KID: mean over random subsets of the unbiased MMD^2 with kernel "
                                        "(x.y/d + 1)^3 on classifier features (can be slightly negative)"),
        Output(KID_STD, "quality", "none", "standard deviation of KID over the subsets (unavailable when the "
                                           "subsets are the whole sets)"),
        Output(KID_SUBSET, "quality", "none", "samples per KID subset: subset_size, or fewer when the real or "
                                              "generated set is smaller"),
    )

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        features = self.extractor(evaluation).features
        real, fake = features(evaluation.real), features(evaluation.fake)
        size = min(self.config.subset_size, len(real), len(fake))
        if size < self.config.min_subset_size:
            why = Unavailable(f"{len(real)} real, {len(fake)} generated samples: KID subsets need at least "
                              f"{self.config.min_subset_size}")
            return {KID: why, KID_STD: why, KID_SUBSET: float(size)}
        if size == len(real) == len(fake):  # every subset would be both whole sets, reordered
            return {KID: kid_mmd2(real, fake), KID_STD: Unavailable(f"KID subsets of {size} are the whole real and "
                                                                    f"generated sets: no spread over subsets"),
                    KID_SUBSET: float(size)}
        values = kid(real, fake, self.config.subsets, size, evaluation.generator(salt=3))
        return {KID: float(values.mean()), KID_STD: float(values.std(correction=0)), KID_SUBSET: float(size)}


@dataclasses.dataclass(frozen=True)
class FeatureManifoldConfig(FeatureConfig):
    k_precision_recall: int = param(3, "neighbour defining the radii for precision and recall "
                                       "(Kynkaanniemi et al.: 3)", ge=1)
    k_density_coverage: int = param(5, "neighbour defining the radii for density and coverage "
                                       "(Naeem et al.: 5)", ge=1)


class FeatureManifold(FeatureMetric):
    """k-NN precision, recall, density and coverage of classifier features."""

    name = "feature-manifold"
    Config = FeatureManifoldConfig
    outputs = (
        Output(PRECISION, "quality", "higher", "share of generated images inside the real k-NN manifold of "
                                               "classifier features (k=3)"),
        Output(RECALL, "quality", "higher", "share of real images inside the generated k-NN manifold of classifier "
                                            "features (k=3)"),
        Output(DENSITY, "quality", "higher", "mean count of real k-NN feature balls holding a generated image, over "
                                             "k (k=5; 1 for identical distributions)"),
        Output(COVERAGE, "quality", "higher", "share of real k-NN feature balls holding a generated image (k=5)"),
    )

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        features = self.extractor(evaluation).features
        real, fake = features(evaluation.real), features(evaluation.fake)
        return manifold_from_features(real, fake, self.config.k_precision_recall, self.config.k_density_coverage)


def manifold_from_features(real: Tensor, fake: Tensor, k_pr: int = 3, k_dc: int = 5) -> dict[str, float | Unavailable]:
    """:func:`manifold_scores` under the output names of this module, all Unavailable unless the
    real set has more than max(k) points and the generated set more than ``k_pr``."""
    if len(real) <= max(k_pr, k_dc) or len(fake) <= k_pr:
        why = Unavailable(f"{len(real)} real, {len(fake)} generated samples: k-NN radii need more than "
                          f"{max(k_pr, k_dc)} real and {k_pr} generated")
        return dict.fromkeys((PRECISION, RECALL, DENSITY, COVERAGE), why)
    scores = manifold_scores(real, fake, k_pr, k_dc)
    return {PRECISION: scores["precision"], RECALL: scores["recall"], DENSITY: scores["density"],
            COVERAGE: scores["coverage"]}


@dataclasses.dataclass(frozen=True)
class ScoreConfig(FeatureConfig):
    splits: int = param(10, "the generated samples are scored in this many splits, averaged (Inception score: 10)",
                        ge=1)


class ClassifierScore(FeatureMetric):
    """The Inception score's formula with the dataset's classifier."""

    name = "classifier-score"
    Config = ScoreConfig
    outputs = (Output(SCORE, "quality", "higher", "exp(E KL(p(y|x) || p(y))) of generated images under the "
                                                  "dataset's classifier, mean over splits (Inception score's "
                                                  "formula; at most the number of classes)"),)

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        classifier = self.extractor(evaluation)
        p = classifier.probabilities(evaluation.fake)
        classes = p.shape[-1] ** (p.shape[1] if p.ndim == 3 else 1)
        if len(p) // self.config.splits < classes:
            return {SCORE: Unavailable(f"{len(p)} generated samples in {self.config.splits} splits: fewer per split "
                                       f"than the {classes} classes")}
        return {SCORE: classifier_score(p, self.config.splits)}


class StackedModes(FeatureMetric):
    """Stacked MNIST's mode count and mode KL, from the classifier's label of each channel."""

    name = "stacked-modes"
    outputs = (
        Output(MODES, "quality", "higher", "modes (channel-label tuples, K^C) hit by at least one generated image"),
        Output(MODE_KL, "quality", "lower", "KL(histogram of the generated images' modes || uniform), nats",
               heavy_tailed=True),
    )

    def applies(self, evaluation: Evaluation) -> bool:
        train = evaluation.dataset.split("train")
        return train is not None and train.labels.ndim == 2

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        classifier = self.extractor(evaluation)
        return stacked_mode_statistics(classifier.labels(evaluation.fake), classifier.classes)


class ClassifierAccuracy(FeatureMetric):
    """Test accuracy of the classifier behind the feature metrics, recorded with every run."""

    name = "classifier-accuracy"
    outputs = (Output(ACCURACY, "quality", "none", "test accuracy of the feature classifier (per channel for "
                                                   "stacked datasets): the feature metrics' trustworthiness"),)

    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        accuracy = self.extractor(evaluation).accuracy
        return {ACCURACY: Unavailable("the dataset has no test split") if math.isnan(accuracy) else accuracy}


@hookimpl
def benchbench_metrics():
    return [FeatureFrechet, KernelInception, FeatureManifold, ClassifierScore, StackedModes, ClassifierAccuracy]
