"""DDPM and the VAE through the core: the conformance kit on 2-D data (MLPs) and on images (dcgan
networks), and a member trained stacked is the member trained alone, bit for bit."""

import json

import pytest

from benchbench import default_registry, parse_suite, run
from benchbench.testing import check_objective

SMALL = {
    "ddpm": {"batch_size": 16, "hidden": [16, 16], "timesteps": 100, "sampling_steps": 4},
    "vae": {"batch_size": 16, "hidden": [16], "encoder_hidden": [16], "latent_dim": 2},
}
CONV = {"architecture": "dcgan", "channels": 4, "batch_size": 8}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_kit_passes_on_2d_data(name):
    check_objective(name, SMALL[name], "ring")


@pytest.mark.parametrize("name", sorted(SMALL))
def test_the_kit_passes_on_images_with_convolutional_networks(name):
    check_objective(name, {**SMALL[name], **CONV}, "digits")


def test_a_fixed_observation_std_passes_the_kit():
    check_objective("vae", {**SMALL["vae"], "observation_std": "fixed"}, "ring")


def documents(outcome):
    return {d["cell"]: d for d in (json.loads(p.read_text()) for p in (outcome.directory / "cells").glob("*.json"))}


def train_stacked_and_alone(tiny, tmp_path, dataset, settings):
    """The cell documents of 3 seeds x both objectives trained as stacks and one seed at a time."""
    raw = {**tiny, "seeds": 3, "steps": 6, "datasets": {dataset: {}}, "metrics": [], "reporters": [],
           "objectives": {name: {**s, **settings} for name, s in SMALL.items()},
           "eval": {"samples": 40, "every": 3, "curve_samples": 20, "plot_samples": 0, "reference": False}}
    stacked = run(parse_suite(raw, default_registry(), source="tiny"), out=tmp_path / "stacked")
    raw["execution"] = {"workers": 1, "stack_seeds": False}
    alone = run(parse_suite(raw, default_registry(), source="tiny"), out=tmp_path / "alone")
    assert not stacked.failed_jobs and not alone.failed_jobs
    a, b = documents(stacked), documents(alone)
    assert set(a) == set(b) and len(a) == 2 * 3
    return a, b


def untimed(scores):
    return {k: v for k, v in scores.items() if k != "eval_time_s"}


def test_a_member_trains_bit_identically_alone_or_stacked(tiny, tmp_path):
    a, b = train_stacked_and_alone(tiny, tmp_path, "ring", {})
    for key in a:
        assert a[key]["curves"] == b[key]["curves"] and untimed(a[key]["scores"]) == untimed(b[key]["scores"]), key
    found = {(d["objective"], c[1]) for d in a.values() for c in d["curves"]}
    assert {("ddpm", "denoising_loss"), ("ddpm", "model_loss"), ("vae", "elbo"), ("vae", "elbo_kl")} <= found
    assert len({str(d["curves"]) for d in a.values()}) == len(a)  # seeds differ


def test_a_member_of_convolutional_networks_trains_alone_as_stacked_up_to_rounding(tiny, tmp_path):
    """Grouped convolutions sum in another order for another number of groups (as for the GANs'
    dcgan networks, tests/train/test_convnets.py): equal to float32 rounding, not bit for bit."""
    a, b = train_stacked_and_alone(tiny, tmp_path, "digits", CONV)
    for key in a:
        assert [c[:2] for c in a[key]["curves"]] == [c[:2] for c in b[key]["curves"]]
        assert [c[2] for c in a[key]["curves"]] == pytest.approx([c[2] for c in b[key]["curves"]], rel=1e-4, abs=1e-5)


def test_ddpm_sampling_settings_change_the_samples_not_the_training(tiny, tmp_path):
    base = {"type": "ddpm", **SMALL["ddpm"]}
    raw = {**tiny, "seeds": 1, "steps": 4, "datasets": {"ring": {}}, "metrics": ["throughput"], "reporters": [],
           "objectives": {"a": base, "b": {**base, "sampling_steps": 10, "variance": "posterior"}},
           "eval": {"samples": 40, "every": 2, "curve_samples": 20, "plot_samples": 0, "reference": False}}
    outcome = run(parse_suite(raw, default_registry(), source="tiny"), out=tmp_path / "r")
    by = {d["objective"]: d for d in documents(outcome).values()}
    training = lambda d: [c for c in d["curves"] if c[1] == "model_loss"]  # noqa: E731 - one stack, trained once
    assert training(by["a"]) and training(by["a"]) == training(by["b"])
    assert (by["a"]["scores"]["nfe"], by["b"]["scores"]["nfe"]) == (4, 10)
    assert by["b"]["scores"]["flops_per_sample"] == pytest.approx(2.5 * by["a"]["scores"]["flops_per_sample"], rel=0.05)
