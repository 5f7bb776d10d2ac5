"""Image datasets (digits, stacked-digits, and the MNIST / Fashion-MNIST / CIFAR-10 loaders on tiny
files written here in the real formats) and the ``grids`` reporter. No network: downloads come from
file:// mirrors or a patched urlopen."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import socket
import struct
import tarfile
import urllib.error
import urllib.request

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from benchbench import ConfigError, DataFileError, NoConfig, RemoteFile, RunReport, dataset_places, locate
from benchbench.api import datafiles
from benchbench_plugins.datasets import images
from benchbench_plugins.datasets.images import Cifar10, Digits, FashionMnist, Mnist, StackedDigits
from benchbench_plugins.datasets.mixtures import Ring
from benchbench_plugins.reporters.grids import Grids

REAL_URLOPEN = urllib.request.urlopen
DIGIT_COUNTS = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]  # images of each digit in the file
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A fresh cache directory, an empty system dataset directory, and no network: any download
    attempt fails as offline."""
    monkeypatch.setenv("BENCHBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(datafiles, "SYSTEM_DATASETS", tmp_path / "system")

    def offline(request, timeout=None):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    return tmp_path / "cache"


def image_keys(x: torch.Tensor) -> list[bytes]:
    return [bytes(row) for row in x.flatten(1).numpy().astype(np.float32)]


# --- digits ----------------------------------------------------------------------------------------

def test_digits_splits_are_fixed_disjoint_and_complete():
    digits = Digits(NoConfig())
    splits = {name: digits.split(name) for name in ("train", "validation", "test")}
    assert {k: len(s.x) for k, s in splits.items()} == {"train": 1257, "validation": 180, "test": 360}
    for s in splits.values():
        assert s.x.shape[1:] == (1, 8, 8) and s.x.dtype == torch.float32 and s.x.device.type == "cpu"
        assert s.x.min() == -1 and s.x.max() == 1 and s.classes == 10 and s.labels.dtype == torch.int64
    rows = images.digits_split_indices()
    assert sorted(np.concatenate(list(rows.values())).tolist()) == list(range(1797))  # disjoint, complete
    assert rows["test"][:3].tolist() == np.random.RandomState(0).permutation(1797)[:3].tolist()
    totals = sum(torch.bincount(s.labels, minlength=10) for s in splits.values())
    assert totals.tolist() == DIGIT_COUNTS
    assert all((torch.bincount(s.labels, minlength=10) > 0).all() for s in splits.values())
    pixels, labels = images.read_digits()
    assert torch.equal(splits["test"].x[0, 0], torch.from_numpy(pixels[rows["test"][0]]).float() / 8 - 1)
    assert torch.equal(Digits(NoConfig()).split("train").x, splits["train"].x)  # the same on every load


def test_digits_sample_draws_training_images_and_heldout_distinct_test_images():
    digits = Digits(NoConfig())
    x = digits.sample(500, torch.Generator().manual_seed(1))
    assert x.shape == (500, 1, 8, 8) and x.dtype == torch.float32
    assert set(image_keys(x)) <= set(image_keys(digits.split("train").x))
    assert torch.equal(x, digits.sample(500, torch.Generator().manual_seed(1)))
    members = digits.sample_members(20, [torch.Generator().manual_seed(s) for s in (3, 4)])
    assert torch.equal(members[1], digits.sample(20, torch.Generator().manual_seed(4)))
    held = digits.heldout(100, torch.Generator().manual_seed(2))
    test = image_keys(digits.split("test").x)
    assert held.shape == (100, 1, 8, 8) and set(image_keys(held)) <= set(test)
    assert len(set(image_keys(held))) == 100  # without replacement (the test images are all distinct)
    everything = digits.heldout(10_000, torch.Generator().manual_seed(2))  # at most the whole test split
    assert len(everything) == 360 and sorted(image_keys(everything)) == sorted(test)
    with pytest.raises(ValueError, match="train, validation, test"):
        digits.split("training")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.gpu
def test_digits_sample_and_heldout_on_the_generator_device():
    digits = Digits(NoConfig())
    generators = [torch.Generator("cuda").manual_seed(s) for s in (0, 1)]
    x = digits.sample_members(50, generators)
    held = digits.heldout(100, torch.Generator("cuda").manual_seed(2))
    assert x.device.type == held.device.type == "cuda" and x.shape == (2, 50, 1, 8, 8) and len(held) == 100
    assert set(image_keys(x[0].cpu())) <= set(image_keys(digits.split("train").x))
    assert digits.split("train").x.device.type == "cpu"


# --- stacked digits --------------------------------------------------------------------------------

def test_stacked_digits_channels_are_digits_of_the_same_split_with_their_labels():
    stacked = StackedDigits(StackedDigits.Config(size=3000, test_size=400, seed=5))
    digits = Digits(NoConfig())
    assert stacked.shape == (3, 8, 8) and stacked.bounds == (-1.0, 1.0)
    for name, size in (("train", 3000), ("validation", 400), ("test", 400)):
        split, source = stacked.split(name), digits.split(name)
        assert split.x.shape == (size, 3, 8, 8) and split.labels.shape == (size, 3) and split.classes == 10
        label_of = dict(zip(image_keys(source.x), source.labels.tolist(), strict=True))
        channels = image_keys(split.x.reshape(-1, 1, 8, 8))
        assert all(key in label_of for key in channels)  # test images use test digits only, etc.
        assert [label_of[key] for key in channels] == split.labels.reshape(-1).tolist()
    x = stacked.sample(64, torch.Generator().manual_seed(0))
    assert x.shape == (64, 3, 8, 8) and set(image_keys(x)) <= set(image_keys(stacked.split("train").x))
    assert len(stacked.heldout(1000, torch.Generator().manual_seed(0))) == 400


def test_stacked_digits_is_deterministic_and_has_a_thousand_modes():
    a = StackedDigits(StackedDigits.Config(seed=7))
    b = StackedDigits(StackedDigits.Config(seed=7, size=100))
    c = StackedDigits(StackedDigits.Config(seed=8))
    assert torch.equal(a.split("test").x, b.split("test").x)  # a split depends on the seed and its own size
    assert torch.equal(a.split("train").x[:100], StackedDigits(StackedDigits.Config(seed=7)).split("train").x[:100])
    assert not torch.equal(a.split("test").x, c.split("test").x)
    codes = a.split("train").labels @ torch.tensor([100, 10, 1])
    assert len(a.split("train").x) == 50_000 and len(codes.unique()) == 1000


# --- MNIST, Fashion-MNIST, CIFAR-10 on tiny files ----------------------------------------------------

def idx_content(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array (magic number, sizes, values)."""
    header = bytes((0, 0, 8, array.ndim)) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def idx_bytes(array: np.ndarray) -> bytes:
    """The gzip-compressed IDX encoding of a uint8 array."""
    return gzip.compress(idx_content(array), mtime=0)


def tiny_mnist(folder, rng) -> dict[str, np.ndarray]:
    """Writes the four IDX files (12 training, 5 test images) into ``folder``; returns the arrays."""
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 12),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, 5)}
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        (folder / name).write_bytes(idx_bytes(array))
    return arrays


def patch_files(monkeypatch, cls, folder, mirrors=(), validation=4) -> None:
    """Point ``cls`` at the tiny files of ``folder``: their MD5s and the SHA-256 of their content
    (where ``cls`` records one), ``mirrors``, a small validation split."""
    def content(path):
        data = path.read_bytes()
        try:
            return hashlib.sha256(gzip.decompress(data)).hexdigest()
        except (OSError, EOFError):  # not a (complete) gzip file: its MD5 lets it through anyway
            return hashlib.sha256(data).hexdigest()

    files = tuple(RemoteFile(f.name, hashlib.md5((folder / f.name).read_bytes()).hexdigest(), "md5", mirrors,
                             content(folder / f.name) if f.content else "") for f in cls.files)
    monkeypatch.setattr(cls, "files", files)
    monkeypatch.setattr(cls, "validation_size", validation)


@pytest.mark.parametrize("cls", [Mnist, FashionMnist])
def test_idx_loader_splits_scales_and_caches(tmp_path, monkeypatch, cls):
    arrays = tiny_mnist(tmp_path / "files", np.random.default_rng(0))
    patch_files(monkeypatch, cls, tmp_path / "files")
    data = cls(cls.Config(root=str(tmp_path / "files"), download=False))
    train, validation, test = (data.split(s) for s in ("train", "validation", "test"))
    images_, labels = arrays["train-images-idx3-ubyte.gz"], arrays["train-labels-idx1-ubyte.gz"]
    assert train.x.shape == (8, 1, 28, 28) and validation.x.shape == (4, 1, 28, 28) and test.x.shape == (5, 1, 28, 28)
    assert torch.equal(train.x[:, 0], torch.from_numpy(images_[:8]).float() / 127.5 - 1)
    assert torch.equal(validation.labels, torch.from_numpy(labels[8:]))
    assert torch.equal(test.labels, torch.from_numpy(arrays["t10k-labels-idx1-ubyte.gz"]))
    assert train.x.min() >= -1 and train.x.max() <= 1 and data.bounds == (-1.0, 1.0)
    cached = list((tmp_path / "files").glob("decoded-v*.pt"))
    assert len(cached) == 1
    for f in cls.files:  # the decoded cache suffices: offline, without the raw files
        (tmp_path / "files" / f.name).unlink()
    assert torch.equal(cls(cls.Config(root=str(tmp_path / "files"))).split("test").x, test.x)
    cached[0].write_bytes(b"corrupt")  # a corrupt cache is rebuilt, which needs the files again
    with pytest.raises(ConfigError, match="place train-images-idx3-ubyte.gz"):
        cls(cls.Config(root=str(tmp_path / "files"))).split("test")


def test_mnist_downloads_into_the_cache_directory(tmp_path, monkeypatch, cache):
    monkeypatch.setattr(urllib.request, "urlopen", REAL_URLOPEN)  # on file:// URLs only
    tiny_mnist(tmp_path / "mirror", np.random.default_rng(1))
    patch_files(monkeypatch, Mnist, tmp_path / "mirror", mirrors=((tmp_path / "mirror").as_uri() + "/",))
    data = Mnist(Mnist.Config())
    assert len(data.split("train").x) == 8
    assert sorted(p.name for p in (cache / "datasets" / "mnist").glob("*.gz")) == sorted(f.name for f in Mnist.files)
    x = data.sample(10, torch.Generator().manual_seed(0))
    assert x.shape == (10, 1, 28, 28) and len(data.heldout(100, torch.Generator().manual_seed(0))) == 5


def test_offline_without_files_says_which_files_go_where(cache):
    with pytest.raises(ConfigError) as error:
        Mnist(Mnist.Config()).split("train")
    message = str(error.value)
    assert "\n" not in message and message.startswith("dataset mnist: download failed")
    assert all(f.name in message for f in Mnist.files)
    assert str(cache / "datasets" / "mnist") in message and "$BENCHBENCH_CACHE" in message and "root" in message
    assert sorted(p.name for p in (cache / "datasets" / "mnist").iterdir()) == []


@pytest.mark.parametrize("damage, match", [(lambda b: gzip.compress(b"\x00\x00\x08\x02" + b[4:]), "magic number"),
                                           (lambda b: gzip.compress(b[:-10]), "IDX sizes"),
                                           (lambda b: b"plain", "magic number"),
                                           (lambda b: gzip.compress(b)[:-30], "damaged gzip file")])
def test_a_malformed_idx_file_is_a_clear_error(tmp_path, monkeypatch, damage, match):
    """With checksums that let it through (a plugin's own files): the reader still says what is wrong."""
    tiny_mnist(tmp_path, np.random.default_rng(2))
    raw = gzip.decompress((tmp_path / "t10k-images-idx3-ubyte.gz").read_bytes())
    broken = damage(raw)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(broken)
    patch_files(monkeypatch, Mnist, tmp_path)
    with pytest.raises(DataFileError, match=match) as error:
        Mnist(Mnist.Config(root=str(tmp_path))).split("test")
    assert "t10k-images-idx3-ubyte.gz" in str(error.value)


# --- where the IDX files are found and in which forms: content checksums, layouts, places (issue 27) ----

TEST_LABELS = "t10k-labels-idx1-ubyte.gz"


def write_copy(arrays: dict[str, np.ndarray], folder, form: str) -> None:
    """The files of ``arrays`` in ``folder``: recompressed by another compressor, or decompressed."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        if form == "recompressed":
            (folder / name).write_bytes(gzip.compress(idx_content(array), compresslevel=1, mtime=1.6e9))
        else:
            (folder / name.removesuffix(".gz")).write_bytes(idx_content(array))


@pytest.mark.parametrize("form", ["recompressed", "decompressed", "torchvision"])
def test_copies_with_the_published_content_pass_in_any_container_and_layout(tmp_path, monkeypatch, form):
    arrays = tiny_mnist(tmp_path / "published", np.random.default_rng(5))
    patch_files(monkeypatch, FashionMnist, tmp_path / "published")
    root = tmp_path / "copy"
    write_copy(arrays, root / "FashionMNIST" / "raw" if form == "torchvision" else root,
               "decompressed" if form == "torchvision" else form)
    data = FashionMnist(FashionMnist.Config(root=str(root), download=False))
    assert torch.equal(data.split("test").labels, torch.from_numpy(arrays[TEST_LABELS]))
    train = torch.from_numpy(arrays["train-images-idx3-ubyte.gz"][:8])
    assert torch.equal(data.split("train").x[:, 0], train / 127.5 - 1)
    if form == "recompressed":
        assert hashlib.md5((root / TEST_LABELS).read_bytes()).hexdigest() != FashionMnist.files[3].checksum


def test_files_are_looked_for_in_the_root_then_the_cache_then_the_system_directory(tmp_path, monkeypatch, cache):
    system = tmp_path / "system" / "fashion-mnist"
    arrays = tiny_mnist(system, np.random.default_rng(6))
    patch_files(monkeypatch, FashionMnist, system)
    root, cached = tmp_path / "root", cache / "datasets" / "fashion-mnist"
    places = dataset_places("fashion-mnist", root, "FashionMNIST")
    assert places == [root, root / "FashionMNIST" / "raw", cached, system]
    for folder in (system, cached, root / "FashionMNIST" / "raw", root):  # each place, once it holds them all, wins
        if folder != system:
            write_copy(arrays, folder, "decompressed")
        assert {p.parent for p in locate(FashionMnist.files, places, allowed=False).values()} == {folder}
    data = FashionMnist(FashionMnist.Config())  # no root: the system's files, decoded into the cache
    assert torch.equal(data.split("test").labels, torch.from_numpy(arrays[TEST_LABELS]))
    assert len(list(cached.glob("decoded-v*.pt"))) == 1 and not list(system.glob("decoded-*"))


def test_offline_without_files_names_the_system_package_where_there_is_one(cache):
    with pytest.raises(ConfigError) as error:
        FashionMnist(FashionMnist.Config()).split("train")
    message = str(error.value)
    assert "\n" not in message and message.startswith("dataset fashion-mnist: download failed")
    assert "apt-get install dataset-fashion-mnist" in message
    assert str(datafiles.SYSTEM_DATASETS / "fashion-mnist") in message
    with pytest.raises(ConfigError) as error:
        Mnist(Mnist.Config()).split("train")
    assert "apt-get" not in str(error.value)


@pytest.mark.parametrize("download", [False, True])
def test_a_directory_with_half_of_the_files_is_one_line_naming_what_it_lacks(tmp_path, monkeypatch, download):
    tiny_mnist(tmp_path / "half", np.random.default_rng(7))
    patch_files(monkeypatch, FashionMnist, tmp_path / "half")
    for name in ("t10k-images-idx3-ubyte.gz", TEST_LABELS):
        (tmp_path / "half" / name).unlink()
    with pytest.raises(ConfigError) as error:
        FashionMnist(FashionMnist.Config(root=str(tmp_path / "half"), download=download)).split("train")
    message = str(error.value)
    assert "\n" not in message and str(tmp_path / "half") in message
    if download:  # offline: the download of the missing ones failed
        assert "download failed" in message and f"place t10k-images-idx3-ubyte.gz, {TEST_LABELS} in" in message
    else:
        assert f"holds train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz but not t10k-images-idx3-ubyte.gz, " \
               f"{TEST_LABELS}" in message


def test_a_damaged_copy_is_one_line_naming_the_file(tmp_path, monkeypatch):
    arrays = tiny_mnist(tmp_path / "published", np.random.default_rng(8))
    patch_files(monkeypatch, FashionMnist, tmp_path / "published")
    write_copy(arrays, tmp_path / "copy", "recompressed")
    path = tmp_path / "copy" / "train-images-idx3-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])  # truncated
    with pytest.raises(DataFileError, match="damaged gzip file") as error:
        FashionMnist(FashionMnist.Config(root=str(tmp_path / "copy"))).split("train")
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
    content = idx_content(arrays["train-images-idx3-ubyte.gz"])
    path.write_bytes(content[:-1] + bytes([content[-1] ^ 1]))  # one value changed: another content
    with pytest.raises(DataFileError, match="neither the published file nor its content") as error:
        FashionMnist(FashionMnist.Config(root=str(tmp_path / "copy"))).split("train")
    assert FashionMnist.files[0].checksum in str(error.value) and FashionMnist.files[0].content in str(error.value)


@pytest.mark.parametrize("name, array, match", [
    ("train-labels-idx1-ubyte.gz", np.zeros(11), "11 labels for the 12 images of train-images-idx3-ubyte.gz"),
    ("t10k-images-idx3-ubyte.gz", np.zeros((5, 27, 28)), r"IDX sizes \(5, 27, 28\)"),
])
def test_idx_files_of_the_wrong_shape_or_count_are_one_line(tmp_path, monkeypatch, name, array, match):
    """Files whose checksums pass (a plugin's own files) are still read with care."""
    tiny_mnist(tmp_path, np.random.default_rng(9))
    (tmp_path / name).write_bytes(idx_bytes(array))
    patch_files(monkeypatch, Mnist, tmp_path)
    with pytest.raises(DataFileError, match=match) as error:
        Mnist(Mnist.Config(root=str(tmp_path))).split("train")
    assert str(error.value).startswith(str(tmp_path / name))


def test_a_damaged_decoded_cache_is_decoded_again_never_trusted(tmp_path, monkeypatch):
    arrays = tiny_mnist(tmp_path, np.random.default_rng(10))
    patch_files(monkeypatch, FashionMnist, tmp_path)
    truth = FashionMnist(FashionMnist.Config(root=str(tmp_path))).split("test").x
    [cached] = tmp_path.glob("decoded-v*.pt")
    stored = torch.load(cached)
    stored["arrays"]["test_x"][0, 0, 0, 0] ^= 1  # one pixel changed, the file still loads
    torch.save(stored, cached)
    assert torch.equal(FashionMnist(FashionMnist.Config(root=str(tmp_path))).split("test").x, truth)
    rebuilt = torch.load(cached)["arrays"]["test_x"][:, 0]
    assert torch.equal(rebuilt, torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"]))


def tiny_cifar(path, rng) -> tuple[np.ndarray, np.ndarray]:
    """A cifar-10-python.tar.gz of 5 training batches of 2 images and a test batch of 4; all
    images and labels in file order."""
    x, y = rng.integers(0, 256, (14, 3072), dtype=np.uint8), rng.integers(0, 10, 14)
    batches = {f"data_batch_{i + 1}": slice(2 * i, 2 * i + 2) for i in range(5)} | {"test_batch": slice(10, 14)}
    with tarfile.open(path, "w:gz") as tar:
        for name, rows in batches.items():
            data = pickle.dumps({b"batch_label": name.encode(), b"data": x[rows], b"labels": y[rows].tolist()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return x.reshape(14, 3, 32, 32), y


def test_cifar_loader_reads_the_pickled_batches_of_a_verified_archive(tmp_path, monkeypatch):
    x, y = tiny_cifar(tmp_path / "cifar-10-python.tar.gz", np.random.default_rng(3))
    patch_files(monkeypatch, Cifar10, tmp_path, validation=3)
    data = Cifar10(Cifar10.Config(root=str(tmp_path)))
    train, validation, test = (data.split(s) for s in ("train", "validation", "test"))
    assert train.x.shape == (7, 3, 32, 32) and len(validation.x) == 3 and len(test.x) == 4
    assert torch.equal(train.x, torch.from_numpy(x[:7]).float() / 127.5 - 1)
    assert torch.equal(validation.labels, torch.from_numpy(y[7:10]))
    assert torch.equal(test.labels, torch.from_numpy(y[10:]))


def test_cifar_downloads_into_the_cache_directory(tmp_path, monkeypatch, cache):
    monkeypatch.setattr(urllib.request, "urlopen", REAL_URLOPEN)  # on file:// URLs only
    (tmp_path / "mirror").mkdir()
    x, _ = tiny_cifar(tmp_path / "mirror" / "cifar-10-python.tar.gz", np.random.default_rng(11))
    mirror = (tmp_path / "mirror").as_uri() + "/"
    patch_files(monkeypatch, Cifar10, tmp_path / "mirror", mirrors=(mirror,), validation=3)
    assert torch.equal(Cifar10(Cifar10.Config()).split("test").x, torch.from_numpy(x[10:]).float() / 127.5 - 1)
    assert sorted(p.name for p in (cache / "datasets" / "cifar10").glob("*.tar.gz")) == ["cifar-10-python.tar.gz"]


def test_cifar_never_unpickles_an_unverified_archive(tmp_path, monkeypatch):
    tiny_cifar(tmp_path / "cifar-10-python.tar.gz", np.random.default_rng(4))  # checksum: the real one's
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled an unverified file"))
    with pytest.raises(DataFileError, match="expected c58f30108f718f92721af3b95e74349a"):
        Cifar10(Cifar10.Config(root=str(tmp_path))).split("train")


# --- the grids reporter ------------------------------------------------------------------------------

def grid_report(tmp_path, datasets: dict, n: int = 40) -> RunReport:
    samples = {}
    for label, dataset in datasets.items():
        for objective in ("(data)", "gan"):
            for seed in (1, 0):
                samples[label, objective, seed] = dataset.sample(n, torch.Generator().manual_seed(seed))
    empty = pd.DataFrame()
    return RunReport(suite="toy", directory=tmp_path, records=empty, curves=empty, summary=empty,
                     outputs={}, datasets=datasets, samples=samples)


def test_grids_writes_a_png_per_image_dataset_and_objective_and_nothing_for_points(tmp_path):
    datasets = {"digits": Digits(NoConfig()), "stacked": StackedDigits(StackedDigits.Config(size=100, test_size=10)),
                "ring": Ring(Ring.Config())}
    paths = Grids(Grids.Config()).report(grid_report(tmp_path, datasets), tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["grid_digits__data_.png", "grid_digits_gan.png", "grid_stacked__data_.png", "grid_stacked_gan.png"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == names
    for path in paths:
        assert path.read_bytes()[:8] == PNG
    grey = plt.imread(tmp_path / "plots" / "grid_digits_gan.png")
    rgb = plt.imread(tmp_path / "plots" / "grid_stacked_gan.png")
    assert grey.shape[:2] == (4 * 44, 4 * 71)  # 40 images: 5 rows of 8 with gaps, enlarged 4x to >= 256 wide
    assert np.allclose(grey[..., 0], grey[..., 1])  # grey images, in an RGBA file
    assert not np.allclose(rgb[..., 0], rgb[..., 1])


def test_grids_does_nothing_for_two_dimensional_data(tmp_path):
    assert Grids(Grids.Config()).report(grid_report(tmp_path, {"ring": Ring(Ring.Config())}), tmp_path) == []
    assert not (tmp_path / "plots").exists()
