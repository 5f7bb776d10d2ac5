"""Inception-v3 features through torch-fidelity (the optional extra ``benchbench[inception]``): the
2,048-d pool features that published FID, KID and precision/recall are computed on, and the logits
of the Inception Score. Nothing here re-implements Inception: the network, its TF-exact resizing
and its weights are torch-fidelity's.

- Preprocessing as the reference does it (:func:`to_uint8`): values mapped from the dataset's
  ``bounds`` to uint8 [0, 255], rounded half up, the same for real and generated images; one channel
  repeated to three; resizing to 299x299 left to the extractor.
- Weights (:func:`weights_path`): the suite's ``inception_weights``, else the file named by
  ``$BENCHBENCH_INCEPTION_WEIGHTS``, else torch-fidelity's own cache (torch hub's ``checkpoints``).
  Verified by SHA-256 before use (``inception_sha256``; default: torch-fidelity's published file).
  Nothing is downloaded: a missing package or file is one :class:`ConfigError` line, before training.
- Features of one evaluation's tensors are memoised per tensor (every metric shares them); the held-out
  real images' features are cached on disk per dataset split, image by image, keyed by torch-fidelity's
  version and the weights' checksum (:class:`SplitCache`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import torch
from torch import Tensor

from benchbench import ConfigError, Dataset, cache_dir, load_tensors, save_tensors
from benchbench.api.download import file_checksum
from benchbench.api.params import as_dict
from benchbench_plugins.features import _memoised

WEIGHTS_FILE = "weights-inception-2015-12-05-6726825d.pth"  # torch-fidelity's file name (its cache's too)
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + WEIGHTS_FILE
WEIGHTS_ENV = "BENCHBENCH_INCEPTION_WEIGHTS"
INSTALL = 'pip install "benchbench[inception]" "torch==<your torch version>"'
POOL, LOGITS = "2048", "logits_unbiased"  # torch-fidelity's names: FID/KID/PRC features, Inception Score logits
BATCH = {"cpu": 50, "cuda": 500}  # images per forward pass (299x299 activations: ~40 MB per image at peak)
CACHE_FORMAT = 1  # bump when what the reference cache holds changes


def to_uint8(x: Tensor, bounds: tuple[float, float]) -> Tensor:
    """Images ``[n, C, H, W]`` with values in ``bounds`` as uint8 [0, 255]: (x - low) / (high - low) * 255,
    clamped, rounded half up (real pixels decoded from bytes map back to those bytes); 1 channel -> 3."""
    low, high = bounds
    scaled = (x.float() - low).mul_(255 / (high - low)).clamp_(0, 255).add_(0.5).floor_().to(torch.uint8)
    return scaled.expand(-1, 3, -1, -1) if scaled.shape[1] == 1 else scaled


def image_problem(dataset: Dataset) -> str | None:
    """Why Inception features cannot be computed on ``dataset`` (None when they can)."""
    shape = tuple(dataset.shape)
    if len(shape) != 3 or shape[0] not in (1, 3) or dataset.bounds is None:
        return (f"features inception need images (C, H, W) with 1 or 3 channels and known bounds, but dataset "
                f"{dataset.name!r} has shape {shape}; use features: classifier")
    return None


def torch_fidelity():
    """The torch_fidelity module, or a :class:`ConfigError` line saying how to install it."""
    try:
        import torch_fidelity as module
    except ModuleNotFoundError as exc:
        if exc.name not in ("torch_fidelity", "torchvision"):
            raise
        raise ConfigError("", f"features inception need the package {exc.name.replace('_', '-')}, not installed: "
                              f"{INSTALL} (README: torch/torchvision pairs that work)") from None
    except Exception as exc:  # noqa: BLE001 - e.g. a torchvision built for another torch
        first = " ".join(str(exc).split())[:160]
        raise ConfigError("", f"torch-fidelity is installed but does not import with torch {torch.__version__} "
                              f"({type(exc).__name__}: {first}): install the torchvision built for this torch "
                              f"(README: torch/torchvision pairs that work)") from None
    return module


def weights_path(setting: str = "") -> Path:
    """Where the weights are taken from: ``setting``, else ``$BENCHBENCH_INCEPTION_WEIGHTS``, else
    torch-fidelity's cache."""
    chosen = setting or os.environ.get(WEIGHTS_ENV, "")
    return Path(chosen).expanduser() if chosen else Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


@dataclasses.dataclass(eq=False)
class InceptionExtractor:
    """torch-fidelity's Inception-v3 with verified weights, applied to images within ``bounds``."""

    net: torch.nn.Module
    key: str  # torch-fidelity's version and the weights' checksum

    def features(self, x: Tensor, bounds: tuple[float, float]) -> Tensor:
        """Pool features ``[n, 2048]`` (float32, on ``x``'s device), memoised per tensor."""
        return self.both(x, bounds)[0]

    def logits(self, x: Tensor, bounds: tuple[float, float]) -> Tensor:
        """Logits ``[n, 1008]`` of the Inception Score (torch-fidelity's ``logits_unbiased``), memoised."""
        return self.both(x, bounds)[1]

    def both(self, x: Tensor, bounds: tuple[float, float]) -> tuple[Tensor, Tensor]:
        return _memoised(("inception", self.key), x, lambda: self._apply(to_uint8(x, bounds)))

    def reference(self, dataset: Dataset, x: Tensor) -> tuple[Tensor, Tensor]:
        """(features, logits) of held-out real images ``x`` (the test split, for the built-in image
        datasets), through the disk cache of that split (:class:`SplitCache`): only images not yet in it
        are computed; memoised per tensor like :meth:`both`."""
        return _memoised(("inception", self.key), x, lambda: self._reference(dataset, to_uint8(x, dataset.bounds)))

    @torch.no_grad()
    def _apply(self, images: Tensor) -> tuple[Tensor, Tensor]:
        net = self.net.to(images.device)
        step = BATCH.get(images.device.type, BATCH["cuda"])
        parts = [net(images[start:start + step]) for start in range(0, len(images), step)]
        if not parts:
            return images.new_zeros((0, 2048), dtype=torch.float32), images.new_zeros((0, 1008), dtype=torch.float32)
        return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _reference(self, dataset: Dataset, images: Tensor) -> tuple[Tensor, Tensor]:
        cache = SplitCache.of(dataset, "heldout", self.key)
        hashes = row_hashes(images)
        new = {h: i for i, h in enumerate(hashes) if h not in cache.rows}
        if new:
            cache.add(list(new), *self._apply(images[torch.tensor(list(new.values()), device=images.device)]))
        return cache.lookup(hashes, images.device)


@dataclasses.dataclass(eq=False)
class SplitCache:
    """Inception features and logits of the real images of one dataset split met so far, by image
    content hash, in one file under ``cache_dir("inception")`` keyed by the dataset, its config, the
    split, torch-fidelity's version and the weights' checksum (:data:`CACHE_FORMAT`)."""

    path: Path
    key: str
    rows: dict[str, int]  # image hash -> row of features / logits
    features: Tensor  # [rows, 2048], CPU
    logits: Tensor  # [rows, 1008], CPU

    @classmethod
    def of(cls, dataset: Dataset, split: str, extractor_key: str) -> SplitCache:
        key = json.dumps({"dataset": dataset.name, "config": as_dict(dataset.config), "split": split,
                          "bounds": list(dataset.bounds), "extractor": extractor_key, "format": CACHE_FORMAT},
                         sort_keys=True, default=str)
        path = cache_dir("inception") / f"{dataset.name}-{split}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
        if str(path) not in _CACHES:
            saved = load_tensors(path)
            try:
                assert isinstance(saved, dict) and saved["key"] == key
                rows = {h: i for i, h in enumerate(saved["hashes"])}
                found = cls(path, key, rows, saved["features"], saved["logits"])
                assert len(found.rows) == len(found.features) == len(found.logits)
            except (AssertionError, KeyError, TypeError):  # none yet, damaged or another layout: start anew
                found = cls(path, key, {}, torch.zeros(0, 2048), torch.zeros(0, 1008))
            _CACHES[str(path)] = found
        return _CACHES[str(path)]

    def add(self, hashes: list[str], features: Tensor, logits: Tensor) -> None:
        """Rows for new images, written to the file at once (atomically)."""
        first = len(self.rows)
        self.rows.update((h, first + i) for i, h in enumerate(hashes))
        self.features = torch.cat([self.features, features.float().cpu()])
        self.logits = torch.cat([self.logits, logits.float().cpu()])
        save_tensors(self.path, {"key": self.key, "hashes": list(self.rows), "features": self.features,
                                 "logits": self.logits})

    def lookup(self, hashes: list[str], device: torch.device) -> tuple[Tensor, Tensor]:
        index = torch.tensor([self.rows[h] for h in hashes], dtype=torch.long)
        return self.features[index].to(device), self.logits[index].to(device)


def row_hashes(images: Tensor) -> list[str]:
    """A content hash of each uint8 image of ``images`` ``[n, ...]``."""
    data = images.reshape(len(images), -1).cpu().numpy()
    return [hashlib.blake2b(row.tobytes(), digest_size=16).hexdigest() for row in data]


def inception(weights: str = "", sha256: str = "") -> InceptionExtractor:
    """torch-fidelity's Inception-v3 with the weights at :func:`weights_path` (``weights``), verified
    against ``sha256`` (default :data:`WEIGHTS_SHA256`); memoised per file and checksum. Raises one
    :class:`ConfigError` line for a missing package or file, a wrong checksum or a wrong layout."""
    module = torch_fidelity()
    path, expected = weights_path(weights), (sha256 or WEIGHTS_SHA256).lower()
    memo = (str(path), expected)
    if memo in _EXTRACTORS:
        return _EXTRACTORS[memo]
    if not path.is_file():
        raise ConfigError("", f"Inception-v3 weights not found at {path}: put {WEIGHTS_FILE} (sha256 {WEIGHTS_SHA256},"
                              f" from {WEIGHTS_URL}) there, or name the file with ${WEIGHTS_ENV} or "
                              f"eval.inception_weights")
    got = file_checksum(path)
    if got != expected:
        raise ConfigError("", f"{path}: sha256 {got}, expected {expected}: not the Inception-v3 weights asked for "
                              f"(torch-fidelity's {WEIGHTS_FILE} has sha256 {WEIGHTS_SHA256}; set "
                              f"eval.inception_sha256 to use a file of your own)")
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    try:
        net = FeatureExtractorInceptionV3("inception-v3-compat", [POOL, LOGITS],
                                          feature_extractor_weights_path=str(path))
    except Exception as exc:  # noqa: BLE001 - not a state dict of this architecture
        first = " ".join(str(exc).split())[:160]
        raise ConfigError("", f"{path}: not Inception-v3 weights in torch-fidelity's layout "
                              f"({type(exc).__name__}: {first})") from None
    found = InceptionExtractor(net, f"torch-fidelity {module.__version__}, weights sha256 {got}")
    _EXTRACTORS[memo] = found
    return found


_EXTRACTORS: dict[tuple[str, str], InceptionExtractor] = {}
_CACHES: dict[str, SplitCache] = {}
