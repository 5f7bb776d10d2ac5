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

``features: inception`` (per metric, or the suite's ``eval.features``) computes ``fid``, ``kid``,
``feature-manifold`` and ``classifier-score`` on torch-fidelity's Inception-v3 instead
(:mod:`benchbench_plugins.inception`): pool features, and the Inception Score (mean and std over 10
splits) from its logits. Those outputs have names of their own (``fid_inception``, ``inception_score``...:
:data:`ON_INCEPTION`), so scores on different features never share a column, a comparison or a gate.

Outputs that the sample sizes cannot support honestly are :class:`Unavailable` (Frechet with
n <= feature dims, k-NN with n <= k, a score split smaller than the number of classes).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import torch
from torch import Tensor

from benchbench import ConfigError, Dataset, Evaluation, Metric, Output, Unavailable, hookimpl, param
from benchbench_plugins.features import FeatureExtractor, extractor
from benchbench_plugins.inception import image_problem, inception
from benchbench_plugins.metrics.distances import row_blocks
from benchbench_plugins.metrics.frechet import frechet_from_samples
from benchbench_plugins.metrics.manifold import ManifoldConfig, manifold_scores
from benchbench_plugins.metrics.modes import kl_histogram

FID = "fid"
KID, KID_STD, KID_SUBSET = "kid", "kid_std", "kid_subset_size"
PRECISION, RECALL = "feature_precision", "feature_recall"
DENSITY, COVERAGE = "feature_density", "feature_coverage"
SCORE = "classifier_score"
MODES, MODE_KL = "stacked_modes", "stacked_mode_kl"
ACCURACY = "classifier_accuracy"
INCEPTION = "inception"  # the feature set whose outputs carry the names below
ON_INCEPTION = {FID: "fid_inception", KID: "kid_inception", KID_STD: "kid_inception_std",
                KID_SUBSET: "kid_inception_subset_size", PRECISION: "precision_inception",
                RECALL: "recall_inception", DENSITY: "density_inception", COVERAGE: "coverage_inception"}
IS, IS_STD = "inception_score", "inception_score_std"
INCEPTION_OUTPUTS = {*ON_INCEPTION.values(), IS, IS_STD}


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
class ClassifierConfig:
    classifier_seed: int = param(0, "seed of the feature classifier's training (cached per dataset and seed)", ge=0)


@dataclasses.dataclass(frozen=True)
class FeatureConfig(ClassifierConfig):
    features: Literal["eval", "classifier", "inception"] = param(
        "eval", "classifier: the dataset's own classifier (offline; compares objectives with each other); "
                "inception: torch-fidelity's Inception-v3 (comparable with published numbers; outputs named "
                "*_inception); eval: the suite's eval.features")
    inception_weights: str = param("", "Inception-v3 weight file ('': eval.inception_weights, else "
                                       "$BENCHBENCH_INCEPTION_WEIGHTS, else torch-fidelity's cache)")
    inception_sha256: str = param("", "SHA-256 the weight file must have ('': eval.inception_sha256, else that of "
                                      "torch-fidelity's published file)")


class FeatureMetric(Metric):
    """A metric on image features: the dataset's classifier's (applies to datasets with a train split) or,
    with ``features: inception``, Inception-v3's (applies to images; outputs renamed by :data:`ON_INCEPTION`).
    The class declares the outputs of both feature sets (every name it can report); an instance declares,
    and reports, those of its own."""

    Config = FeatureConfig

    def __init__(self, config):
        super().__init__(config)
        self.outputs = tuple(o for o in type(self).outputs if self.on_inception == (o.name in INCEPTION_OUTPUTS))

    @property
    def on_inception(self) -> bool:
        return getattr(self.config, "features", "classifier") == INCEPTION

    def applies(self, evaluation: Evaluation) -> bool:
        if self.on_inception:
            return image_problem(evaluation.dataset) is None
        return evaluation.dataset.split("train") is not None

    def check(self, dataset: Dataset) -> None:
        """Inception features: refuse a dataset that is not images, a missing package or weight file."""
        if self.on_inception:
            problem = image_problem(dataset)
            if problem:
                raise ConfigError("", problem)
            inception(self.config.inception_weights, self.config.inception_sha256)

    def extractor(self, evaluation: Evaluation) -> FeatureExtractor:
        return extractor(evaluation.dataset, self.config.classifier_seed)

    def real_and_fake(self, evaluation: Evaluation) -> tuple[Tensor, Tensor]:
        """Features of the real and the generated images on the configured feature set."""
        if self.on_inception:
            net = inception(self.config.inception_weights, self.config.inception_sha256)
            return (net.reference(evaluation.dataset, evaluation.real)[0],
                    net.features(evaluation.fake, evaluation.dataset.bounds))
        features = self.extractor(evaluation).features
        return features(evaluation.real), features(evaluation.fake)

    def named(self, values: dict[str, float | Unavailable]) -> dict[str, float | Unavailable]:
        """``values`` under the output names of the configured feature set."""
        return {ON_INCEPTION.get(k, k): v for k, v in values.items()} if self.on_inception else values


def on_inception(output: Output, doc: str) -> Output:
    """The Inception-feature twin of a classifier-feature output: its own name, so the two never share a column."""
    return dataclasses.replace(output, name=ON_INCEPTION[output.name], doc=doc)


class FeatureFrechet(FeatureMetric):
    """FID's formula on the classifier's features."""

    name = "fid"
    outputs = (Output(FID, "quality", "lower", "Frechet distance of Gaussians fitted to classifier features of "
                                               "held-out real and generated images (FID's formula)"),)
    outputs += (on_inception(outputs[0], "FID: Frechet distance of Gaussians fitted to Inception-v3 pool features "
                                         "(torch-fidelity, 2,048-d) of held-out real and generated images"),)

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        return self.named({FID: fid_from_features(*self.real_and_fake(evaluation))})


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
    outputs += (on_inception(outputs[0], "KID on Inception-v3 pool features (torch-fidelity): mean over random "
                                         "subsets of the unbiased MMD^2 with kernel (x.y/d + 1)^3"),
                on_inception(outputs[1], "standard deviation of the Inception KID over the subsets"),
                on_inception(outputs[2], "samples per Inception KID subset"))

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        return self.named(self._compute(evaluation))

    def _compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        real, fake = self.real_and_fake(evaluation)
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
class FeatureManifoldConfig(ManifoldConfig, FeatureConfig):
    """The feature settings, then the k of :class:`~benchbench_plugins.metrics.manifold.ManifoldConfig`."""


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
    outputs += (on_inception(outputs[0], "share of generated images inside the real k-NN manifold (k=3) of "
                                         "Inception-v3 pool features"),
                on_inception(outputs[1], "share of real images inside the generated k-NN manifold (k=3) of "
                                         "Inception-v3 pool features"),
                on_inception(outputs[2], "density (k=5) on Inception-v3 pool features"),
                on_inception(outputs[3], "coverage (k=5) on Inception-v3 pool features"))

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        real, fake = self.real_and_fake(evaluation)
        return self.named(manifold_from_features(real, fake, self.config.k_precision_recall,
                                                 self.config.k_density_coverage))


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
                                                  "formula; at most the number of classes)"),
               Output(IS, "quality", "higher", "Inception Score (features: inception): torch-fidelity's, on "
                                               "Inception-v3 logits of generated images, mean over splits"),
               Output(IS_STD, "quality", "none", "standard deviation of the Inception Score over the splits"))

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        if self.on_inception:
            net = inception(self.config.inception_weights, self.config.inception_sha256)
            return inception_score(net.logits(evaluation.fake, evaluation.dataset.bounds), self.config.splits)
        classifier = self.extractor(evaluation)
        p = classifier.probabilities(evaluation.fake)
        classes = p.shape[-1] ** (p.shape[1] if p.ndim == 3 else 1)
        if len(p) // self.config.splits < classes:
            return {SCORE: Unavailable(f"{len(p)} generated samples in {self.config.splits} splits: fewer per split "
                                       f"than the {classes} classes")}
        return {SCORE: classifier_score(p, self.config.splits)}


def inception_score(logits: Tensor, splits: int = 10) -> dict[str, float | Unavailable]:
    """torch-fidelity's Inception Score of ``logits`` ``[n, K]`` (softmax, ``splits`` splits after its
    seeded shuffle): mean and std over the splits; Unavailable with fewer than 2 samples per split."""
    if len(logits) < 2 * splits:
        why = Unavailable(f"{len(logits)} generated samples in {splits} splits: fewer than 2 per split")
        return {IS: why, IS_STD: why}
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric
    found = isc_features_to_metric(logits.cpu(), splits)
    return {IS: found[KEY_METRIC_ISC_MEAN], IS_STD: found[KEY_METRIC_ISC_STD]}


class StackedModes(FeatureMetric):
    """Stacked MNIST's mode count and mode KL, from the classifier's label of each channel."""

    name = "stacked-modes"
    Config = ClassifierConfig
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
    Config = ClassifierConfig
    outputs = (Output(ACCURACY, "quality", "none", "test accuracy of the feature classifier (per channel for "
                                                   "stacked datasets): the feature metrics' trustworthiness"),)

    def compute(self, evaluation: Evaluation) -> dict[str, float | Unavailable]:
        accuracy = self.extractor(evaluation).accuracy
        return {ACCURACY: Unavailable("the dataset has no test split") if math.isnan(accuracy) else accuracy}


@hookimpl
def benchbench_metrics():
    return [FeatureFrechet, KernelInception, FeatureManifold, ClassifierScore, StackedModes, ClassifierAccuracy]
