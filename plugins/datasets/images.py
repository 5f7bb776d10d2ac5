"""Image datasets with fixed train/validation/test splits, values in [-1, 1].

- ``digits``: the 8x8 handwritten digits bundled with this package (1,797 images, no download).
- ``stacked-digits``: three digits as the three channels, 1,000 modes (Stacked MNIST on digits).
- ``mnist``, ``fashion-mnist`` (1x28x28) and ``cifar10`` (3x32x32): the standard files, found in the
  suite's ``root``, the cache or the system's dataset directory (Debian's ``dataset-fashion-mnist``),
  else downloaded from the usual mirrors into the cache directory; verified by the checksum of the
  published file or, for the IDX files, of their decoded content; decoded once.

Every dataset here samples training images uniformly with replacement (:meth:`ImageDataset.sample`)
and holds out (a random subset of) its test split (:meth:`ImageDataset.heldout`).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import pickle
import struct
import tarfile
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from benchbench import (
    DataFileError,
    Dataset,
    RemoteFile,
    Split,
    cache_dir,
    dataset_places,
    hookimpl,
    load_tensors,
    locate,
    param,
    save_tensors,
)

SPLITS = ("train", "validation", "test")
DIGITS_FILE = Path(__file__).parent / "data" / "digits.csv.gz"
DECODED_FORMAT = 2  # bump when what the decoded cache holds changes


class ImageDataset(Dataset):
    """A finite dataset of images: its three splits, loaded on first use and kept on the CPU, and
    the training images on each device that :meth:`sample` was asked for."""

    bounds = (-1.0, 1.0)
    classes: ClassVar[int] = 10

    def __init__(self, config):
        super().__init__(config)
        self._splits: dict[str, Split] | None = None
        self._on_device: dict[tuple[str, torch.device], Tensor] = {}

    def load_splits(self) -> dict[str, Split]:
        """The splits "train", "validation" and "test": images ``[N, *shape]`` float32 in [-1, 1], labels."""
        raise NotImplementedError

    def split(self, name: str) -> Split:
        if name not in SPLITS:
            raise ValueError(f"{self.name} has splits {', '.join(SPLITS)}; got {name!r}")
        if self._splits is None:
            self._splits = self.load_splits()
        return self._splits[name]

    def images(self, name: str, device: torch.device) -> Tensor:
        """The images of split ``name`` on ``device`` (copied there once)."""
        if (name, device) not in self._on_device:
            self._on_device[name, device] = self.split(name).x.to(device)
        return self._on_device[name, device]

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` training images drawn uniformly with replacement."""
        return self.sample_members(n, [generator])[0]

    def sample_members(self, n: int, generators: list[torch.Generator]) -> Tensor:
        """Each member draws its indices from its own generator; one gather for the whole stack."""
        device = generators[0].device
        x = self.images("train", device)
        index = torch.stack([torch.randint(len(x), (n,), generator=g, device=device) for g in generators])
        return x[index]

    def heldout(self, n: int, generator: torch.Generator) -> Tensor:
        """``min(n, test size)`` distinct test images, a random subset."""
        x = self.images("test", generator.device)
        return x[torch.randperm(len(x), generator=generator, device=generator.device)[:n]]


# --- digits ----------------------------------------------------------------------------------------

def read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits: pixels ``[1797, 8, 8]`` (0..16) and labels ``[1797]``, in file order."""
    with gzip.open(DIGITS_FILE, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    return table[:, :64].reshape(-1, 8, 8), table[:, 64]


def digits_split_indices() -> dict[str, np.ndarray]:
    """Rows of the digits file in each split: ``np.random.RandomState(0).permutation(1797)``
    (MT19937, a stream numpy keeps fixed), whose first 360 entries are the test split, the next
    180 the validation split and the remaining 1,257 the training split."""
    order = np.random.RandomState(0).permutation(1797)
    return {"test": order[:360], "validation": order[360:540], "train": order[540:]}


class Digits(ImageDataset):
    """The 8x8 handwritten digits of scikit-learn (UCI Optical Recognition of Handwritten Digits,
    test part: 1,797 images of 10 digits), scaled from 0..16 to [-1, 1]. Splits: see
    :func:`digits_split_indices` (train 1,257, validation 180, test 360)."""

    name = "digits"
    shape = (1, 8, 8)

    def load_splits(self) -> dict[str, Split]:
        pixels, labels = read_digits()
        x = torch.from_numpy(pixels).to(torch.float32).div(8).sub(1).unsqueeze(1)
        y = torch.from_numpy(labels)
        return {name: Split(x[rows], y[rows], self.classes) for name, rows in digits_split_indices().items()}


@dataclasses.dataclass(frozen=True)
class StackedDigitsConfig:
    size: int = param(50_000, "training images", ge=1)
    test_size: int = param(10_000, "images of the test split, and of the validation split", ge=1)
    seed: int = param(0, "seed of the digits picked for each image", ge=0, le=2**32 - 1)


class StackedDigits(ImageDataset):
    """Three digits as the red, green and blue channels of one 8x8 image: 1,000 modes (the
    digit triples), the Stacked MNIST protocol of mode-collapse studies on the 8x8 digits.

    Image ``i`` of split ``s`` stacks the digits ``np.random.RandomState([seed, k]).randint(m,
    size=(N, 3))[i]`` of the same split of ``digits`` (m images; k = 0, 1, 2 for train,
    validation, test), so the test images reuse no training digit, and a split depends only on
    ``seed`` and its own size. Labels ``[N, 3]``: the digit of each channel."""

    name = "stacked-digits"
    Config = StackedDigitsConfig
    shape = (3, 8, 8)

    def load_splits(self) -> dict[str, Split]:
        digits = Digits(Digits.Config())
        sizes = {"train": self.config.size, "validation": self.config.test_size, "test": self.config.test_size}
        splits = {}
        for k, name in enumerate(SPLITS):
            source = digits.split(name)
            rows = np.random.RandomState([self.config.seed, k]).randint(len(source.x), size=(sizes[name], 3))
            rows = torch.from_numpy(rows)
            splits[name] = Split(source.x[rows, 0], source.labels[rows], self.classes)
        return splits


# --- downloaded datasets -----------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DownloadConfig:
    root: str | None = param(None, "directory of the dataset's files, looked in first (also torchvision's "
                                   "<root>/<Folder>/raw), then datasets/<name> in the cache directory "
                                   "($BENCHBENCH_CACHE or ~/.cache/benchbench), then /usr/share/datasets/<name>")
    download: bool = param(True, "download missing files from the standard mirrors (false: use only the "
                                 "files already in one of those directories)")


class DownloadedImages(ImageDataset):
    """Images decoded from published files: found (or downloaded) and verified by
    :func:`benchbench.locate` in :func:`benchbench.dataset_places`, decoded once into
    ``decoded-v<format>-<checksums>.pt`` in ``root`` or the cache (uint8 pixels and their SHA-256,
    checked on every load: a damaged file is decoded again, never trusted), and split: train = the
    training file but its last ``validation_size`` images, which are the validation split; test = the
    test file."""

    Config = DownloadConfig
    files: ClassVar[tuple[RemoteFile, ...]]
    validation_size: ClassVar[int]
    torchvision_folder: ClassVar[str] = ""  # torchvision's <root>/<folder>/raw, where it has one
    system_package: ClassVar[str] = ""  # the system package installing the files into /usr/share/datasets/<name>

    def decode(self, paths: dict[str, Path]) -> dict[str, np.ndarray]:
        """From the verified files (name -> path): "train_x", "test_x" (uint8 ``[N, *shape]``) and
        "train_y", "test_y" (int64 ``[N]``)."""
        raise NotImplementedError

    def directory(self) -> Path:
        """Where the decoded cache is written, and missing files downloaded to: ``root``, else the cache."""
        return Path(self.config.root).expanduser() if self.config.root else cache_dir("datasets", self.name)

    def decoded(self) -> dict[str, Tensor]:
        """The decoded arrays as tensors, from the cache when it holds them intact."""
        key = hashlib.sha256(" ".join(f.content or f.checksum for f in self.files).encode()).hexdigest()[:12]
        cache = self.directory() / f"decoded-v{DECODED_FORMAT}-{key}.pt"
        stored = load_tensors(cache)
        if isinstance(stored, dict) and self._intact(stored.get("arrays")) \
                and stored.get("sha256") == arrays_checksum(stored["arrays"]):
            return stored["arrays"]
        places = dataset_places(self.name, self.config.root, self.torchvision_folder)
        paths = locate(self.files, places, allowed=self.config.download, where=f"dataset {self.name}",
                       hint="the dataset's root setting in the suite, or $BENCHBENCH_CACHE, moves that directory",
                       package=self.system_package)
        arrays = {k: torch.from_numpy(np.array(v)) for k, v in self.decode(paths).items()}  # copies: writable
        assert self._intact(arrays), f"{self.name}: decode() returned unexpected arrays"
        try:
            save_tensors(cache, {"arrays": arrays, "sha256": arrays_checksum(arrays)})
        except OSError:  # a read-only directory: decode again next time
            pass
        return arrays

    def _intact(self, arrays) -> bool:
        """True when ``arrays`` is what :meth:`decode` returns (as tensors) for this shape."""
        if not isinstance(arrays, dict) or set(arrays) != {"train_x", "train_y", "test_x", "test_y"}:
            return False
        for split in ("train", "test"):
            x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
            if not (isinstance(x, Tensor) and isinstance(y, Tensor) and x.dtype == torch.uint8
                    and tuple(x.shape[1:]) == self.shape and y.shape == x.shape[:1]):
                return False
        return True

    def load_splits(self) -> dict[str, Split]:
        arrays = self.decoded()
        n = len(arrays["train_x"]) - self.validation_size
        if n < 1:
            raise DataFileError(self.directory(), f"{self.name}: {len(arrays['train_x'])} training images, "
                                                  f"expected more than {self.validation_size}")
        x, y = arrays["train_x"], arrays["train_y"].long()
        return {"train": Split(from_bytes(x[:n]), y[:n], self.classes),
                "validation": Split(from_bytes(x[n:]), y[n:], self.classes),
                "test": Split(from_bytes(arrays["test_x"]), arrays["test_y"].long(), self.classes)}


def arrays_checksum(arrays: dict[str, Tensor]) -> str:
    """SHA-256 of named tensors: each name, dtype, shape and values, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        values = arrays[name].contiguous().numpy()
        digest.update(f"{name} {values.dtype} {values.shape}\n".encode())
        digest.update(memoryview(values).cast("B"))
    return digest.hexdigest()


def from_bytes(x: Tensor) -> Tensor:
    """uint8 pixels 0..255 as float32 in [-1, 1]."""
    return x.to(torch.float32).div(127.5).sub(1)


def read_idx(path: Path, dims: tuple[int, ...]) -> np.ndarray:
    """The uint8 array of an IDX file (MNIST format), gzip-compressed or not: magic number 0x0000
    0x08 ndim (0x08: unsigned bytes), ndim big-endian uint32 sizes, then the values; sizes after the
    first must be ``dims`` (``()`` for labels, ``(28, 28)`` for images)."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataFileError(path, f"damaged gzip file: {exc}") from None
    ndim = 1 + len(dims)
    if len(data) < 4 + 4 * ndim or data[:4] != bytes((0, 0, 8, ndim)):
        raise DataFileError(path, f"not an IDX file of {ndim}-D unsigned bytes (magic number "
                                  f"{data[:4].hex() or 'missing'}, expected {bytes((0, 0, 8, ndim)).hex()})")
    sizes = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    if sizes[1:] != dims or len(data) != 4 + 4 * ndim + int(np.prod(sizes)):
        raise DataFileError(path, f"IDX sizes {sizes} with {len(data) - 4 - 4 * ndim} bytes of values; "
                                  f"expected (N, {', '.join(map(str, dims))}) and N * {int(np.prod(dims))} bytes")
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(sizes)


MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/")
FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
IDX_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
             "t10k-labels-idx1-ubyte.gz")


def idx_files(mirrors: tuple[str, ...], md5s: tuple[str, ...], contents: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    """The four files of an MNIST-format dataset (``IDX_NAMES``) with their published MD5s and the
    SHA-256 of their decompressed content."""
    return tuple(RemoteFile(name, md5, "md5", mirrors, content)
                 for name, md5, content in zip(IDX_NAMES, md5s, contents, strict=True))


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 1, 28, 28]`` and labels ``[N]`` (int64) of an IDX images file and its labels file."""
    x, y = read_idx(images, (28, 28)), read_idx(labels, ())
    if len(x) != len(y):
        raise DataFileError(labels, f"{len(y):,} labels for the {len(x):,} images of {images.name}")
    return x[:, None], y.astype(np.int64)


class Mnist(DownloadedImages):
    """MNIST (LeCun et al.): 28x28 handwritten digits. Train: the first 50,000 images of the
    training file; validation: its last 10,000; test: the 10,000 of the t10k file."""

    name = "mnist"
    shape = (1, 28, 28)
    validation_size = 10_000
    torchvision_folder = "MNIST"
    # content: the SHA-256 of the decompressed files that projects pinning MNIST agree on (no MNIST
    # files on the machine this was written on; derive them again with `gunzip -c F | sha256sum`)
    files = idx_files(MNIST_MIRRORS, ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
                                      "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
                      ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                       "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                       "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                       "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"))

    def decode(self, paths: dict[str, Path]) -> dict[str, np.ndarray]:
        train_x, train_y, test_x, test_y = (paths[f.name] for f in self.files)
        (train_x, train_y), (test_x, test_y) = read_idx_pair(train_x, train_y), read_idx_pair(test_x, test_y)
        return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


class FashionMnist(Mnist):
    """Fashion-MNIST (Xiao et al., Zalando): 28x28 images of 10 kinds of clothing, MNIST's format
    and splits. Debian's ``dataset-fashion-mnist`` installs the files (recompressed: their content
    passes, not the published MD5s) into /usr/share/datasets/fashion-mnist."""

    name = "fashion-mnist"
    torchvision_folder = "FashionMNIST"
    system_package = "dataset-fashion-mnist"
    # content: the SHA-256 of the decompressed files, derived from Debian's dataset-fashion-mnist (whose
    # decoded data is the published one: 60,000 training images, mean pixel 0.2860, std 0.3530, 6,000 a class)
    files = idx_files(FASHION_MIRRORS, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                                        "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
                      ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                       "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                       "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                       "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"))


def read_cifar(archive: Path, batches: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 3, 32, 32]`` uint8 and labels ``[N]`` of the pickled ``batches`` of a CIFAR-10
    archive, read in memory (nothing is extracted). Unpickling runs code from the file: pass
    only an archive whose checksum was verified."""
    images, labels = [], []
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for batch in batches:
                with tar.extractfile(f"cifar-10-batches-py/{batch}") as f:
                    entry = pickle.load(f, encoding="bytes")
                images.append(np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.append(np.asarray(entry[b"labels"], dtype=np.int64))
    except (tarfile.TarError, KeyError, ValueError, TypeError, pickle.UnpicklingError, OSError, EOFError) as exc:
        raise DataFileError(archive, f"not a CIFAR-10 python archive: {type(exc).__name__}: {exc}") from None
    return np.concatenate(images), np.concatenate(labels)


class Cifar10(DownloadedImages):
    """CIFAR-10 (Krizhevsky, 2009): 32x32 colour images of 10 classes. Train: the first 45,000
    images of data_batch_1..5; validation: their last 5,000; test: the 10,000 of test_batch."""

    name = "cifar10"
    shape = (3, 32, 32)
    validation_size = 5_000
    files = (RemoteFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a", "md5",
                        ("https://www.cs.toronto.edu/~kriz/",)),)

    def decode(self, paths: dict[str, Path]) -> dict[str, np.ndarray]:
        archive = paths[self.files[0].name]
        train_x, train_y = read_cifar(archive, tuple(f"data_batch_{i}" for i in range(1, 6)))
        test_x, test_y = read_cifar(archive, ("test_batch",))
        return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


@hookimpl
def benchbench_datasets():
    return [Digits, StackedDigits, Mnist, FashionMnist, Cifar10]
