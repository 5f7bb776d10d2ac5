"""DCGAN-style stacked convnets: sizes from the image shape, members independent, a member trained
in a stack equals the same member trained alone (within float tolerance: grouped convolutions
may sum in another order than single ones)."""

import json

import pytest
import torch

from benchbench import Dataset, Split, hookimpl, parse_suite, registry_with, run
from benchbench.nets.convnets import DCGANCritic, DCGANDenoiser, DCGANGenerator, resolutions


class Blobs(Dataset):
    """4x8x8... tiny images: a bright square in one of four corners, values in [-1, 1]."""

    name = "blobs"
    shape = (1, 8, 8)
    bounds = (-1.0, 1.0)

    def _images(self, labels):
        x = -torch.ones(len(labels), 1, 8, 8)
        for i, c in enumerate(labels.tolist()):
            r, q = divmod(c, 2)
            x[i, 0, 4 * r:4 * r + 4, 4 * q:4 * q + 4] = 1.0
        return x

    def sample(self, n, generator):
        labels = torch.randint(0, 4, (n,), generator=generator, device=generator.device)
        return self._images(labels.cpu()).to(generator.device)

    def split(self, name):
        labels = torch.arange(40) % 4
        return Split(self._images(labels), labels, 4)


@pytest.mark.parametrize("size, expected", [(8, [4, 8]), (28, [7, 14, 28]), (32, [4, 8, 16, 32]), (5, [5])])
def test_resolutions_halve_while_even_and_above_four(size, expected):
    assert resolutions(size) == expected


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28)])
def test_shapes_and_member_independence(shape):
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    generator, critic = DCGANGenerator(4, shape, 8, gens), DCGANCritic(shape, 8, gens)
    z = torch.randn(3, 5, 4)
    x = generator(z)
    assert x.shape == (3, 5, torch.Size(shape).numel())
    logits = critic(x.unflatten(2, shape))
    assert logits.shape == (3, 5, 1)
    # changing member 1's input changes only member 1's outputs
    z2 = z.clone()
    z2[1] += 1
    x2 = generator(z2)
    assert torch.equal(x2[0], x[0]) and torch.equal(x2[2], x[2]) and not torch.equal(x2[1], x[1])
    # a member's weights do not depend on the stack size
    alone = DCGANGenerator(4, shape, 8, [torch.Generator().manual_seed(1)])
    torch.testing.assert_close(alone(z[1:2]), x[1:2], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 28, 28)])
def test_the_time_conditioned_denoiser_and_encoder_keep_members_apart(shape):
    gens = [torch.Generator().manual_seed(s) for s in range(3)]
    denoiser, encoder = DCGANDenoiser(shape, 4, gens), DCGANCritic(shape, 4, gens, outputs=6)
    x, t = torch.randn(3, 5, *shape), torch.rand(3, 5)
    y = denoiser(x, t)
    assert y.shape == (3, 5, torch.Size(shape).numel()) and encoder(x).shape == (3, 5, 6)
    t2 = t.clone()
    t2[1, 0] = 0.9 if t[1, 0] < 0.5 else 0.1  # the time reaches the output, of its member and sample only
    y2 = denoiser(x, t2)
    assert torch.equal(y2[0], y[0]) and torch.equal(y2[2], y[2]) and torch.equal(y2[1, 1:], y[1, 1:])
    assert not torch.equal(y2[1, 0], y[1, 0])
    alone = DCGANDenoiser(shape, 4, [torch.Generator().manual_seed(1)])
    torch.testing.assert_close(alone(x[1:2], t[1:2]), y[1:2], rtol=1e-5, atol=1e-5)


def test_flow_matching_on_images_passes_the_conformance_kit():
    from benchbench import testing
    testing.check_objective("flow", {"architecture": "dcgan", "channels": 4, "batch_size": 8, "sampling_steps": 2},
                            dataset=Blobs)


def test_a_member_trains_the_same_alone_or_stacked(tiny, tmp_path):
    plugin = type("P", (), {"benchbench_datasets": staticmethod(hookimpl(lambda: [Blobs]))})
    registry = registry_with([("blobs", plugin)])
    conv = {"architecture": "dcgan", "channels": 4, "batch_size": 8}
    raw = {**tiny, "seeds": 3, "steps": 4, "datasets": {"blobs": {}}, "metrics": [], "reporters": [],
           "objectives": {"nonsaturating": {**conv, "noise_dim": 4}, "gmmn": {**conv, "noise_dim": 4},
                          "flow": {**conv, "sampling_steps": 2}},
           "eval": {"samples": 20, "curve_samples": 10}}
    stacked = run(parse_suite(raw, registry), out=tmp_path / "stacked", registry=registry)
    raw["execution"] = {"workers": 1, "stack_seeds": False}
    alone = run(parse_suite(raw, registry), out=tmp_path / "alone", registry=registry)
    assert not stacked.failed_jobs and not alone.failed_jobs
    documents = lambda r: {d["cell"]: d for d in (json.loads(p.read_text()) for p in (r.directory / "cells").glob("*.json"))}  # noqa: E731,E501
    a, b = documents(stacked), documents(alone)
    assert set(a) == set(b)
    for key in a:
        curves_a, curves_b = a[key]["curves"], b[key]["curves"]
        assert [c[:2] for c in curves_a] == [c[:2] for c in curves_b]
        assert [c[2] for c in curves_a] == pytest.approx([c[2] for c in curves_b], rel=1e-4, abs=1e-5)


def test_dcgan_on_flat_data_is_a_clear_error(tiny):
    from benchbench import ConfigError, default_registry
    raw = {**tiny, "objectives": {"nonsaturating": {"architecture": "dcgan"}}}
    with pytest.raises(ConfigError, match="architecture.*dcgan needs square images"):
        parse_suite(raw, default_registry(), source="tiny.yaml")


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28)])
def test_the_denoiser_samples_in_chunks_with_the_bits_of_one_call(shape, monkeypatch):
    from benchbench.nets import convnets
    gens = [torch.Generator().manual_seed(s) for s in range(2)]
    denoiser = DCGANDenoiser(shape, 4, gens)
    x, t = torch.randn(2, 37, *shape), torch.rand(2, 37)
    whole = denoiser(x, t).detach()  # with gradients: one call
    monkeypatch.setattr(convnets, "SAMPLING_CHUNK_ENTRIES", 2 * 4 * shape[1] * shape[2] * 5)
    assert denoiser.chunk_samples() == 5
    with torch.no_grad():
        chunked = denoiser(x, t)
    assert torch.equal(chunked, whole)  # 8 chunks, the last of 2 samples
