"""Precision / recall (Kynkaanniemi et al. 2019) and density / coverage (Naeem et al. 2020) of
k-nearest-neighbour manifolds, on the raw flattened samples.

A sample set's manifold is the union of balls B(z_i, r_k(z_i)), r_k = distance to the k-th nearest
neighbour of z_i within its own set, excluding z_i itself. Membership is non-strict (<=), so
identical sets score 1, not 0. With real x_1..x_N and generated y_1..y_M:

- precision = share of generated samples inside the real manifold (k = 3);
- recall = share of real samples inside the generated manifold (k = 3);
- density = 1/(kM) sum_j sum_i 1[y_j in B(x_i, r_k(x_i))] (k = 5; -> 1 for identical distributions);
- coverage = share of real samples whose ball B(x_i, r_k(x_i)) contains a generated sample (k = 5).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from benchbench import Evaluation, Metric, Output, hookimpl, param
from benchbench_plugins.metrics.distances import distance_blocks
from benchbench_plugins.metrics.memo import memoised


def knn_radii2(x: Tensor, ks: tuple[int, ...]) -> list[Tensor]:
    """Squared distance of each point of ``x`` ``[n, d]`` to its k-th nearest neighbour within ``x``,
    excluding itself, for each k in ``ks``; each ``[n]``. Needs n > max(ks).

    The (k+1)-th smallest entry of a row of within-distances (self-distance exactly 0) is the k-th
    excluding the point itself, ties and duplicates included. The block results are written into
    one tensor made beforehand: kept as a list of small pieces between the blocks' large temporaries,
    they fragmented the heap (at n = 10,000, in most runs the process grew by 260-390 MB, as much as
    the [n, n] float32 matrix, 381 MB).
    """
    kmax = max(ks)
    assert len(x) > kmax, f"need more than {kmax} points for k = {kmax}, got {len(x)}"
    smallest = torch.empty(len(x), kmax + 1, dtype=x.dtype, device=x.device)
    for rows, d2 in distance_blocks(x):
        smallest[rows] = torch.topk(d2, kmax + 1, dim=1, largest=False, sorted=True).values
    return [smallest[:, k] for k in ks]


def shared_knn_radii2(x: Tensor, ks: tuple[int, ...]) -> list[Tensor]:
    """:func:`knn_radii2`, computed once for equal samples (:mod:`~benchbench_plugins.metrics.memo`):
    the held-out data's radii at every curve point and final evaluation of a job, the generated
    samples' radii for both this module and the KDE's kernel widths. Do not modify the result."""
    return memoised(("knn-radii2", tuple(ks)), (x,), lambda: knn_radii2(x, ks))


def manifold_scores(real: Tensor, fake: Tensor, k_pr: int = 3, k_dc: int = 5) -> dict[str, float]:
    """``precision``, ``recall`` (radii of the ``k_pr``-th neighbour), ``density`` and ``coverage``
    (radii of the ``k_dc``-th neighbour) of ``real`` ``[N, d]`` and ``fake`` ``[M, d]``, membership
    d(z, centre) <= radius:

    precision = share of fakes in some real ball; recall = share of reals in some fake ball;
    density = (1/(k_dc M)) * number of (real ball, fake inside) pairs; coverage = share of real
    balls holding a fake. One pass over blocks of fakes, without the [M, N] matrix; the radii
    from :func:`shared_knn_radii2`.
    """
    radii_pr, radii_dc = shared_knn_radii2(real, (k_pr, k_dc))
    (radii_fake,) = shared_knn_radii2(fake, (k_pr,))
    precise = torch.zeros((), dtype=torch.float64, device=real.device)
    memberships = torch.zeros((), dtype=torch.float64, device=real.device)
    recalled = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    covered = torch.zeros(len(real), dtype=torch.bool, device=real.device)
    for rows, d2 in distance_blocks(fake, real):  # [b, N]: a block of fakes against every real
        precise += (d2 <= radii_pr).any(1).sum()
        inside = d2 <= radii_dc
        memberships += inside.sum()
        covered |= inside.any(0)
        recalled |= (d2 <= radii_fake[rows, None]).any(0)
    m = len(fake)
    return {"precision": float(precise) / m, "recall": float(recalled.double().mean()),
            "density": float(memberships) / (k_dc * m), "coverage": float(covered.double().mean())}


@dataclasses.dataclass(frozen=True)
class ManifoldConfig:
    k_precision_recall: int = param(3, "neighbour defining the radii for precision and recall "
                                       "(Kynkaanniemi et al.: 3)", ge=1)
    k_density_coverage: int = param(5, "neighbour defining the radii for density and coverage "
                                       "(Naeem et al.: 5)", ge=1)


class Manifold(Metric):
    """k-NN precision, recall, density and coverage on the flattened samples."""

    name = "manifold"
    Config = ManifoldConfig
    outputs = (
        Output("precision", "quality", "higher", "share of generated samples inside the real k-NN manifold (k=3)",
               range=(0.0, 1.0)),
        Output("recall", "quality", "higher", "share of real samples inside the generated k-NN manifold (k=3)",
               range=(0.0, 1.0)),
        Output("density", "quality", "higher", "mean count of real k-NN balls holding a generated sample, over k "
                                               "(k=5; 1 for identical distributions)", range=(0.0, math.inf)),
        Output("coverage", "quality", "higher", "share of real k-NN balls holding a generated sample (k=5)",
               range=(0.0, 1.0)),
    )

    def applies(self, evaluation: Evaluation) -> bool:
        return evaluation.dataset.split("train") is None  # images: the feature-space metrics of ``images``

    @torch.no_grad()
    def compute(self, evaluation: Evaluation) -> dict[str, float]:
        return manifold_scores(evaluation.real.flatten(1), evaluation.fake.flatten(1),
                               self.config.k_precision_recall, self.config.k_density_coverage)


@hookimpl
def benchbench_metrics():
    return [Manifold]
