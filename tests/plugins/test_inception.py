"""Inception-v3 features through torch-fidelity (issue 34), without the real weights.

The tests that need torch-fidelity (with a torchvision that imports beside this torch) skip with the
reason elsewhere; `.ci/run` runs this file in `.venv-inception`, where they run. Their weights are a
file of the same architecture that the tests write themselves (random weights), loaded through the
path a user's file takes ($BENCHBENCH_INCEPTION_WEIGHTS, the checksum check, torch-fidelity's loader).
A test that needs the real weights skips where torch-fidelity's cache does not hold them.
"""

import sys

import pytest
import torch
import yaml

from benchbench import ConfigError, Evaluation, default_registry
from benchbench.api.download import file_checksum
from benchbench.config.suite import parse_suite
from benchbench.testing.inception import random_inception_weights
from benchbench_plugins import inception as inc
from benchbench_plugins.datasets.images import Digits, from_bytes
from benchbench_plugins.metrics import images
from clirun import invoke


def _fidelity_problem() -> str:
    try:
        inc.torch_fidelity()
    except ConfigError as exc:
        return f"{exc} (the Inception tests run in .ci/run's .venv-inception)"
    return ""


NEEDS_FIDELITY = pytest.mark.skipif(bool(_fidelity_problem()), reason=_fidelity_problem())
NEEDS_REAL_WEIGHTS = pytest.mark.skipif(not inc.weights_path().is_file(),
                                        reason=f"the real Inception-v3 weights are not at {inc.weights_path()}")

SUITE = {
    "name": "inception", "seeds": 1, "steps": 2,
    "eval": {"samples": 10, "every": 0, "curve_samples": 10, "plot_samples": 0, "reference": False,
             "features": "inception"},
    "execution": {"workers": 1},
    "datasets": {"digits": {}},
    "objectives": {"gmmn": {"batch_size": 4, "hidden": [8]}},
    "metrics": {"kid": {"min_subset_size": 2}, "classifier-score": {"splits": 2}},
    "reporters": [],
}


def run_suite(tmp_path, capsys, suite=SUITE):
    path = tmp_path / "inception.yaml"
    path.write_text(yaml.safe_dump(suite))
    return invoke(["run", str(path), "--results", str(tmp_path / "results"), "-q"], capsys)


def assert_refused(code, out, err, tmp_path, *words):
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), (words, err)
    assert not (tmp_path / "results").exists()


# ---- preprocessing ----------------------------------------------------------------------------------

def test_real_pixels_map_back_to_their_bytes():
    pixels = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 16, 16)
    mapped = inc.to_uint8(from_bytes(pixels), (-1.0, 1.0))
    assert mapped.dtype == torch.uint8 and mapped.shape == (1, 3, 16, 16)
    assert all(torch.equal(mapped[:, c], pixels[:, 0]) for c in range(3))  # one channel repeated to three


def test_generated_values_are_clamped_and_rounded_half_up_as_real_ones():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0, 1 / 127.5 - 1, 0.5 / 127.5 - 1, 0.49 / 127.5 - 1]).reshape(1, 1, 1, 8)
    assert inc.to_uint8(x, (-1.0, 1.0))[0, 0, 0].tolist() == [0, 0, 128, 255, 255, 1, 1, 0]
    assert inc.to_uint8(torch.tensor([0.0, 0.5, 1.0]).reshape(1, 1, 1, 3), (0.0, 1.0))[0, 0, 0].tolist() == \
        [0, 128, 255]
    rgb = torch.tensor([-1.0, 0.0, 1.0]).reshape(1, 3, 1, 1)
    assert inc.to_uint8(rgb, (-1.0, 1.0)).flatten().tolist() == [0, 128, 255]  # three channels kept as they are


# ---- which features a score used --------------------------------------------------------------------

def test_the_two_feature_sets_never_share_an_output_name():
    for metric in (images.FeatureFrechet, images.KernelInception, images.FeatureManifold, images.ClassifierScore):
        names = [o.name for o in metric.outputs]
        assert len(set(names)) == len(names)
        assert any("inception" in n for n in names) and any("inception" not in n for n in names)
    assert set(images.ON_INCEPTION).isdisjoint(images.ON_INCEPTION.values())


def test_features_are_set_under_eval_and_overridden_per_metric():
    raw = {**SUITE, "metrics": {"fid": {}, "kid": {"features": "classifier"}, "stacked-modes": {}}}
    suite = parse_suite(raw, default_registry())
    chosen = {m.label: getattr(m.config, "features", None) for m in suite.metrics}
    assert chosen == {"fid": "inception", "kid": "classifier", "stacked-modes": None}
    default = parse_suite({**raw, "eval": {"samples": 10}}, default_registry())
    assert {m.label: getattr(m.config, "features", None) for m in default.metrics}["fid"] == "classifier"
    weights = parse_suite({**raw, "eval": {**SUITE["eval"], "inception_weights": "/w.pth", "inception_sha256": "ab"}},
                          default_registry())
    fid = next(m.config for m in weights.metrics if m.label == "fid")
    assert (fid.inception_weights, fid.inception_sha256) == ("/w.pth", "ab")
    assert suite.resolved()["metrics"]["fid"]["features"] == "inception"  # saved with the run


def test_a_classifier_score_keeps_its_own_names(monkeypatch):
    metric = images.FeatureFrechet(images.FeatureConfig(features="classifier"))
    assert metric.named({images.FID: 1.0}) == {images.FID: 1.0}
    assert images.FeatureFrechet(images.FeatureConfig(features="inception")).named({images.FID: 1.0}) == \
        {"fid_inception": 1.0}


# ---- refusals, before training -------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [("eval", {"features": "imagenet"}),
                                        ("metrics", {"fid": {"features": "imagenet"}})])
def test_an_unknown_feature_set_is_one_line(tmp_path, capsys, key, value):
    code, out, err = run_suite(tmp_path, capsys, {**SUITE, key: value})
    assert_refused(code, out, err, tmp_path, "features", "imagenet", "classifier", "inception")


def test_inception_features_on_data_that_is_not_images_are_refused(tmp_path, capsys):
    code, out, err = run_suite(tmp_path, capsys, {**SUITE, "datasets": {"ring": {}}})
    assert_refused(code, out, err, tmp_path, "metrics.classifier-score", "need images", "'ring'", "(2,)")


def test_without_torch_fidelity_the_suite_is_refused_naming_the_package(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch_fidelity", None)  # import torch_fidelity -> ModuleNotFoundError
    code, out, err = run_suite(tmp_path, capsys)
    assert_refused(code, out, err, tmp_path, "metrics.", "torch-fidelity", "not installed", "benchbench[inception]")


def test_a_torch_fidelity_that_does_not_import_is_refused_naming_torchvision(tmp_path, capsys, monkeypatch):
    """What the registry's torchvision 0.28.0 does beside the CPU build of torch 2.13.0."""
    broken = tmp_path / "site" / "torch_fidelity"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise RuntimeError("operator torchvision::nms does not exist")\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delitem(sys.modules, "torch_fidelity", raising=False)
    code, out, err = run_suite(tmp_path, capsys)
    assert_refused(code, out, err, tmp_path, "torch-fidelity is installed but does not import",
                   "operator torchvision::nms does not exist", "torchvision built for this torch")


@NEEDS_FIDELITY
def test_missing_weights_are_refused_naming_the_file_its_checksum_and_where_to_put_it(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # torch-fidelity's cache, empty
    code, out, err = run_suite(tmp_path, capsys)
    where = tmp_path / "torch" / "hub" / "checkpoints" / inc.WEIGHTS_FILE
    assert_refused(code, out, err, tmp_path, inc.WEIGHTS_FILE, inc.WEIGHTS_SHA256, str(where), inc.WEIGHTS_ENV)
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(tmp_path / "mine.pth"))
    code, out, err = run_suite(tmp_path, capsys)
    assert_refused(code, out, err, tmp_path, str(tmp_path / "mine.pth"), inc.WEIGHTS_SHA256)


@NEEDS_FIDELITY
def test_weights_with_another_checksum_are_refused(tmp_path, capsys, monkeypatch, random_weights):
    path, sha = random_weights
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(path))
    code, out, err = run_suite(tmp_path, capsys)
    assert_refused(code, out, err, tmp_path, str(path), f"sha256 {sha}, expected {inc.WEIGHTS_SHA256}")


@NEEDS_FIDELITY
def test_weights_of_another_layout_are_refused(tmp_path, capsys):
    path = tmp_path / "small.pth"
    torch.save({"fc.weight": torch.zeros(3, 2)}, path)
    suite = {**SUITE, "eval": {**SUITE["eval"], "inception_weights": str(path),
                               "inception_sha256": file_checksum(path)}}
    code, out, err = run_suite(tmp_path, capsys, suite)
    assert_refused(code, out, err, tmp_path, str(path), "not Inception-v3 weights in torch-fidelity's layout")


# ---- the wiring, with random weights of the same architecture -----------------------------------------------

@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """(path, sha256) of Inception-v3 weights in torch-fidelity's layout, drawn at random."""
    if _fidelity_problem():
        pytest.skip(_fidelity_problem())
    path = random_inception_weights(tmp_path_factory.mktemp("weights"))
    return path, file_checksum(path)


@pytest.fixture
def random_inception(random_weights, monkeypatch, tmp_path):
    path, sha = random_weights
    monkeypatch.setenv(inc.WEIGHTS_ENV, str(path))
    monkeypatch.setenv("BENCHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(inc, "_CACHES", {})
    return sha


def four_and_four(dataset):
    real = dataset.heldout(4, torch.Generator().manual_seed(0))
    fake = torch.rand(4, *dataset.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
    return real, fake


@NEEDS_FIDELITY
def test_random_weights_load_through_the_users_path_and_score_every_metric(random_inception):
    dataset = Digits(Digits.Config())
    real, fake = four_and_four(dataset)
    evaluation = Evaluation(real, fake, dataset, seed=0)
    config = {"features": "inception", "inception_sha256": random_inception}
    fid = images.FeatureFrechet(images.FeatureConfig(**config)).compute(evaluation)
    kid = images.KernelInception(images.KIDConfig(**config, min_subset_size=2)).compute(evaluation)
    manifold = images.FeatureManifold(images.FeatureManifoldConfig(**config, k_precision_recall=1,
                                                                   k_density_coverage=1)).compute(evaluation)
    score = images.ClassifierScore(images.ScoreConfig(**config, splits=2)).compute(evaluation)
    assert "2048" in fid["fid_inception"].reason  # 4 samples cannot support a 2,048-d Frechet distance
    assert set(kid) == {"kid_inception", "kid_inception_std", "kid_inception_subset_size"} and kid["kid_inception"] > 0
    assert set(manifold) == {"precision_inception", "recall_inception", "density_inception", "coverage_inception"}
    assert set(score) == {images.IS, images.IS_STD} and 1 <= score[images.IS] <= 2

    # the features are torch-fidelity's network applied to the uint8 images, nothing else
    net = inc.inception("", random_inception)
    expected = net.net(inc.to_uint8(fake, dataset.bounds))
    assert torch.equal(net.features(fake, dataset.bounds), expected[0])
    assert torch.equal(net.logits(fake, dataset.bounds), expected[1])
    assert expected[0].std() > 1e-3 and not torch.equal(expected[0][0], expected[0][1])  # features that can differ


@NEEDS_FIDELITY
def test_held_out_features_are_cached_on_disk_per_split(random_inception, monkeypatch):
    dataset = Digits(Digits.Config())
    real, _ = four_and_four(dataset)
    net = inc.inception("", random_inception)
    first = net.reference(dataset, real)
    files = list((inc.cache_dir("inception")).glob("digits-heldout-*.pt"))
    assert len(files) == 1
    monkeypatch.setattr(inc, "_CACHES", {})  # a new process: only the file is left
    monkeypatch.setattr(inc.InceptionExtractor, "_apply", lambda self, images: pytest.fail("recomputed"))
    again = net.reference(dataset, real.clone())  # a new tensor with the same images
    assert torch.equal(again[0], first[0]) and torch.equal(again[1], first[1])
    assert torch.equal(net.reference(dataset, real[[2, 0]].clone())[0], first[0][[2, 0]])


# ---- the Inception Score's closed forms (torch-fidelity's own formula) ---------------------------------------

@NEEDS_FIDELITY
@pytest.mark.parametrize("splits", [1, 10])
def test_inception_score_is_one_when_every_prediction_is_the_same(splits):
    logits = torch.randn(1, 1008, generator=torch.Generator().manual_seed(0)).expand(100, -1)
    found = images.inception_score(logits, splits)
    assert found[images.IS] == pytest.approx(1, abs=1e-12) and found[images.IS_STD] == pytest.approx(0, abs=1e-12)


@NEEDS_FIDELITY
@pytest.mark.parametrize("classes", [1, 10, 1008])
def test_inception_score_is_k_for_one_hot_predictions_spread_evenly_over_k_classes(classes):
    # one-hot to within e^-100 (exactly 0 would make torch-fidelity's log of an empty class's marginal NaN)
    logits = torch.full((classes * 3, 1008), -100.0, dtype=torch.float64)
    logits[torch.arange(classes * 3), torch.arange(classes * 3) % classes] = 0
    found = images.inception_score(logits, splits=1)  # one split: torch-fidelity's shuffle cannot unbalance it
    assert found[images.IS] == pytest.approx(classes, rel=1e-12)


def test_an_inception_score_needs_two_samples_per_split():
    found = images.inception_score(torch.zeros(19, 1008), splits=10)
    assert "fewer than 2 per split" in found[images.IS].reason


# ---- with the real weights -------------------------------------------------------------------------------------

@NEEDS_FIDELITY
@NEEDS_REAL_WEIGHTS
def test_the_real_weights_verify_and_give_finite_features(monkeypatch):
    monkeypatch.delenv(inc.WEIGHTS_ENV, raising=False)
    dataset = Digits(Digits.Config())
    real, fake = four_and_four(dataset)
    net = inc.inception()
    assert net.key.endswith(inc.WEIGHTS_SHA256)
    assert torch.isfinite(net.features(real, dataset.bounds)).all()
    logits = net.logits(fake, dataset.bounds)
    assert logits.shape == (4, 1008) and torch.isfinite(logits).all()


# ---- a whole run ----------------------------------------------------------------------------------------------

@NEEDS_FIDELITY
@pytest.mark.slow
def test_a_run_records_inception_scores_under_their_own_names(tmp_path, capsys, random_inception):
    suite = {**SUITE, "eval": {**SUITE["eval"], "inception_sha256": random_inception},
             "metrics": {"kid": {"min_subset_size": 2}, "classifier-score": {"splits": 2},
                         "classifier-accuracy": {}}}
    code, out, err = run_suite(tmp_path, capsys, suite)
    assert code == 0, err
    import pandas as pd
    records = pd.read_csv(next((tmp_path / "results").rglob("records.csv")))
    metrics = set(records["metric"])
    assert {"kid_inception", "inception_score", "classifier_accuracy"} <= metrics
    assert not metrics & {"kid", "classifier_score"}


def test_a_search_selects_on_the_outputs_of_the_chosen_features(tmp_path, capsys):
    suite = {**SUITE, "metrics": {"kid": {"min_subset_size": 2}},
             "search": {"trials": 2, "seeds": 2, "select": {"metric": "kid"}},
             "objectives": {"gmmn": {"batch_size": 4, "hidden": [8], "search": {"lr": {"loguniform": [1e-4, 1e-2]}}}}}
    code, out, err = run_suite(tmp_path, capsys, suite)
    assert_refused(code, out, err, tmp_path, "search.select.metric", "no metric of the suite outputs 'kid'",
                   "kid_inception")
