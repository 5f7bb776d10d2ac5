import math

import pytest
import torch

from benchbench_plugins.kernels import mmd2_gaussian
from benchbench_plugins.objectives.gan import Minimax, NonSaturating, gan_value, non_saturating_loss, saturating_loss
from benchbench_plugins.objectives.gmmn import GMMN

LOG4 = math.log(4)


def logits(*values):
    return torch.tensor(values, dtype=torch.float64).reshape(1, -1, 1)  # one member


def test_value_is_minus_log4_when_critic_says_half():
    assert torch.allclose(gan_value(logits(0.0, 0.0), logits(0.0)), torch.tensor([-LOG4], dtype=torch.float64))


def test_value_on_hand_computed_inputs():
    # D(x) = 0.75 (logit log 3) on the real sample, D(G(z)) = 0.2 (logit log 0.25) on the fake one
    v = gan_value(logits(math.log(3)), logits(math.log(0.25)))
    assert math.isclose(v.item(), math.log(0.75) + math.log(0.8), rel_tol=1e-12)


def test_generator_losses_match_their_formulas():
    l = logits(-2.0, 0.5, 3.0)
    d = torch.sigmoid(l)
    assert torch.allclose(saturating_loss(l), torch.log(1 - d).mean().reshape(1))
    assert torch.allclose(non_saturating_loss(l), -torch.log(d).mean().reshape(1))


def test_losses_are_stable_for_confident_critics():
    l = logits(-100.0, 100.0)
    assert torch.isfinite(saturating_loss(l)).all() and torch.isfinite(non_saturating_loss(l)).all()
    assert math.isclose(saturating_loss(logits(100.0)).item(), -100.0)  # log(1 - sigmoid(100)) = -100
    assert math.isclose(non_saturating_loss(logits(-100.0)).item(), 100.0)


def test_saturating_gradient_vanishes_where_critic_rejects_fakes():
    for loss, vanishes in ((saturating_loss, True), (non_saturating_loss, False)):
        l = logits(-20.0).requires_grad_()  # D(G(z)) = 2e-9: the critic confidently rejects
        loss(l).sum().backward()
        grad = l.grad.abs().item()
        assert (grad < 1e-8) if vanishes else (grad > 0.99)


def test_objectives_use_the_critic_and_return_one_loss_per_member():
    critic = lambda x: x.sum(-1, keepdim=True)  # noqa: E731  logits = x1 + x2
    fake = torch.tensor([[[1.0, -3.0], [0.5, 0.5]], [[0.0, 0.0], [2.0, 2.0]]])  # two members
    real = torch.zeros_like(fake)
    config = Minimax.Config()
    mm, ns = Minimax(config, real[0]), NonSaturating(config, real[0])
    l = critic(fake)
    assert torch.allclose(mm.generator_loss(critic, real, fake), torch.log(1 - torch.sigmoid(l)).mean((1, 2)))
    assert torch.allclose(ns.generator_loss(critic, real, fake), -torch.log(torch.sigmoid(l)).mean((1, 2)))
    assert torch.allclose(mm.critic_loss(critic, real, fake), -gan_value(critic(real), l))
    diagnosis = mm.diagnose(critic, real, fake)
    assert torch.allclose(diagnosis["jsd_lower_bound"], (diagnosis["critic_value"] + LOG4) / 2)


def test_gmmn_loss_is_sqrt_mmd_with_its_bandwidths():
    x = torch.tensor([[[0.0], [1.0]]])
    y = torch.tensor([[[0.5], [3.0]]])
    gmmn = GMMN(GMMN.Config(bandwidths=(1.0,)), x[0])
    k = lambda a, b: math.exp(-((a - b) ** 2) / 2)  # noqa: E731
    xs, ys = [0.0, 1.0], [0.5, 3.0]
    biased = (sum(k(a, b) for a in xs for b in xs) / 4 + sum(k(a, b) for a in ys for b in ys) / 4
              - 2 * sum(k(a, b) for a in xs for b in ys) / 4)
    assert math.isclose(gmmn.generator_loss(None, x, y).item(), math.sqrt(biased), rel_tol=1e-5)
    assert math.isclose(mmd2_gaussian(x, y, (1.0,), unbiased=False).item(), biased, rel_tol=1e-5)


def _mmd2_by_autograd(x, y, sigmas, unbiased):
    """The textbook formula, differentiated by autograd: the reference for the hand-written gradient."""
    n, m = x.shape[-2], y.shape[-2]
    z = torch.cat([x, y], dim=-2)
    d2 = (z[..., :, None, :] - z[..., None, :, :]).square().sum(-1)
    k = sum(torch.exp(-d2 / (2 * s * s)) for s in sigmas)
    kxx, kxy, kyy = k[..., :n, :n], k[..., :n, n:], k[..., n:, n:]
    if unbiased:
        xx = (kxx.sum((-1, -2)) - kxx.diagonal(dim1=-2, dim2=-1).sum(-1)) / (n * (n - 1))
        yy = (kyy.sum((-1, -2)) - kyy.diagonal(dim1=-2, dim2=-1).sum(-1)) / (m * (m - 1))
    else:
        xx, yy = kxx.mean((-1, -2)), kyy.mean((-1, -2))
    return xx + yy - 2 * kxy.mean((-1, -2))


@pytest.mark.parametrize("unbiased", [False, True])
@pytest.mark.parametrize("d", [2, 20])  # coordinate-wise sums, and the matrix-product path above 16 dims
def test_gmmn_hand_written_gradient_matches_autograd_and_gradcheck(unbiased, d):
    g = torch.Generator().manual_seed(d)
    x = torch.randn(3, 7, d, generator=g, dtype=torch.float64)
    y = torch.randn(3, 5, d, generator=g, dtype=torch.float64, requires_grad=True)
    sigmas = (0.5, 1.0, 4.0)
    ours = mmd2_gaussian(x, y, sigmas, unbiased)
    reference = _mmd2_by_autograd(x, y, sigmas, unbiased)
    torch.testing.assert_close(ours, reference)
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)  # distinct per-member upstream gradients
    torch.testing.assert_close(torch.autograd.grad((ours * weights).sum(), y)[0],
                               torch.autograd.grad((reference * weights).sum(), y)[0])
    xg = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: mmd2_gaussian(a, b, sigmas, unbiased), (xg, y))
    with torch.no_grad():  # no graph: the same value
        torch.testing.assert_close(mmd2_gaussian(x, y, sigmas, unbiased), reference.detach())


def test_gmmn_default_bandwidths_scale_with_the_data():
    data = torch.randn(500, 2)
    small, large = GMMN(GMMN.Config(), data), GMMN(GMMN.Config(), 10 * data)
    assert all(math.isclose(b, 10 * a, rel_tol=1e-4) for a, b in zip(small.sigmas, large.sigmas))


def test_gmmn_loss_under_bf16_autocast_is_computed_in_float32():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 20, generator=g)
    y = torch.randn(2, 16, 20, generator=g, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = mmd2_gaussian(x.bfloat16(), y.bfloat16(), (2.0, 8.0), unbiased=False)
    assert loss.dtype == torch.float32
    loss.sum().backward()
    assert y.grad.dtype == torch.float32 and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0
    torch.testing.assert_close(loss, mmd2_gaussian(x, y, (2.0, 8.0), unbiased=False), atol=0.02, rtol=0.05)
