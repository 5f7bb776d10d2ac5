"""The feature extractor of an image dataset: a small CNN classifier that benchbench trains itself,
deterministically, on the dataset's train split (the role Inception-v3 plays for FID on ImageNet).

- Trained on the CPU from a fixed ``torch.Generator`` (weights, shuffling), with ordinary
  deterministic ops (convolutions, ReLU, linear maps; no pooling kernels), Adam, cross-entropy.
- Cached under ``cache_dir("classifiers")`` keyed by the dataset's name and resolved config, the
  classifier seed and :data:`CODE_VERSION` (bump it when the network or the recipe changes); a
  corrupt or mismatched file is retrained. Also memoised in-process.
- Stacked datasets (labels ``[N, C]``, one per channel, e.g. Stacked MNIST): the network sees one
  channel at a time (trained on ``[N * C, 1, H, W]``); an image's features are its channels'
  features concatenated, its class the tuple of channel classes (mode = sum_c label_c * K^c).
- Features are the penultimate layer (:data:`FEATURES` per channel, after ReLU), divided by their
  root-mean-square over the train split, so that x.y/d is of order 1 as with Inception's features
  (KID's polynomial kernel depends on that scale; FID and the k-NN metrics only scale). Features of one
  evaluation's tensors are memoised (keyed on the tensor's identity and version, dropped when the
  tensor is freed), so the several image metrics of one evaluation compute them once.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import weakref
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from benchbench import Dataset, Split, cache_dir, exclusive, load_tensors, save_tensors
from benchbench.api.params import as_dict

CODE_VERSION = 2  # bump when the network, the recipe or the preprocessing changes: old caches are ignored
FEATURES = 64  # penultimate width, per channel
WIDTH = 32  # channels of the first convolution (the second has 2 x WIDTH)
BATCH = 64
EPOCHS = 15
MAX_STEPS = 3000  # large train splits (MNIST, Fashion-MNIST, stacked digits) stop after this many steps
LEARNING_RATE = 2e-3
EVAL_BATCH = 1024  # images per forward pass when computing features


class ConvClassifier(nn.Module):
    """conv3x3(c -> W), conv3x3/2(W -> 2W), conv3x3/2(2W -> 2W), each + ReLU; flatten; linear to
    :data:`FEATURES` + ReLU (the features); linear to the classes. Weights uniform(+-1/sqrt(fan_in))
    (PyTorch's default scale) drawn from ``generator``, not from the global RNG."""

    def __init__(self, channels: int, height: int, width: int, classes: int, generator: torch.Generator):
        super().__init__()
        shapes = {"conv1": (WIDTH, channels, 3, 3), "conv2": (2 * WIDTH, WIDTH, 3, 3),
                  "conv3": (2 * WIDTH, 2 * WIDTH, 3, 3),
                  "fc": (FEATURES, 2 * WIDTH * _halved(height, 2) * _halved(width, 2)), "head": (classes, FEATURES)}
        for name, shape in shapes.items():
            bound = 1 / math.sqrt(math.prod(shape[1:]))
            self.register_parameter(f"{name}_weight", _uniform(shape, bound, generator))
            self.register_parameter(f"{name}_bias", _uniform(shape[:1], bound, generator))

    def features(self, x: Tensor) -> Tensor:
        """Penultimate activations ``[n, FEATURES]`` of images ``[n, channels, H, W]``."""
        x = F.relu(F.conv2d(x, self.conv1_weight, self.conv1_bias, padding=1))
        x = F.relu(F.conv2d(x, self.conv2_weight, self.conv2_bias, stride=2, padding=1))
        x = F.relu(F.conv2d(x, self.conv3_weight, self.conv3_bias, stride=2, padding=1))
        return F.relu(F.linear(x.flatten(1), self.fc_weight, self.fc_bias))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(self.features(x), self.head_weight, self.head_bias)


def _halved(size: int, times: int) -> int:
    for _ in range(times):
        size = (size + 1) // 2  # a stride-2 3x3 convolution with padding 1
    return size


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.empty(shape).uniform_(-bound, bound, generator=generator))


def per_channel(split: Split) -> bool:
    """Whether ``split`` has one label per channel (a stacked dataset)."""
    return split.labels.ndim == 2


def training_examples(split: Split) -> tuple[Tensor, Tensor]:
    """(images, labels) the network is trained on: single channels ``[N * C, 1, H, W]`` with labels
    ``[N * C]`` for a stacked split, else the split itself."""
    if per_channel(split):
        n, c = split.labels.shape
        return split.x.reshape(n * c, 1, *split.x.shape[2:]), split.labels.reshape(n * c)
    return split.x, split.labels


def train_classifier(split: Split, seed: int) -> ConvClassifier:
    """A :class:`ConvClassifier` trained on ``split`` (CPU, float32) from ``seed`` alone."""
    x, labels = training_examples(split)
    x, labels = x.float().cpu(), labels.long().cpu()
    generator = torch.Generator().manual_seed(seed)
    net = ConvClassifier(x.shape[1], x.shape[2], x.shape[3], split.classes, generator)
    optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    steps_per_epoch = math.ceil(len(x) / BATCH)
    steps = min(MAX_STEPS, EPOCHS * steps_per_epoch)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    order = torch.randperm(len(x), generator=generator)
    with torch.enable_grad():  # metrics build their extractor lazily, under torch.no_grad()
        for step in range(steps):
            if step and step % steps_per_epoch == 0:
                order = torch.randperm(len(x), generator=generator)
            batch = order[(step % steps_per_epoch) * BATCH:][:BATCH]
            loss = F.cross_entropy(net(x[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return net.eval().requires_grad_(False)


def accuracy(net: ConvClassifier, split: Split) -> float:
    """Share of the examples of ``split`` (of the channels, for a stacked split) classified right."""
    x, labels = training_examples(split)
    predicted = torch.cat([_forward(net, x[rows]).argmax(1) for rows in _batches(len(x))])
    return float((predicted == labels.to(predicted.device)).double().mean())


def feature_scale(net: ConvClassifier, split: Split) -> float:
    """Root-mean-square of the penultimate activations of the examples of ``split`` (the per-channel
    images of a stacked split); 1 if they are all zero."""
    x, _ = training_examples(split)
    with torch.no_grad():
        total = sum(float(net.features(x[rows].float()).double().square().sum()) for rows in _batches(len(x)))
    rms = math.sqrt(total / (len(x) * FEATURES))
    return rms if rms > 0 else 1.0


@dataclasses.dataclass(eq=False)
class FeatureExtractor:
    """A trained classifier of one dataset, applied to images of that dataset's shape."""

    net: ConvClassifier
    classes: int  # classes of one label
    channels: int | None  # labelled channels of a stacked dataset, None for one label per image
    accuracy: float  # on the test split (per channel for a stacked dataset); NaN without a test split
    scale: float  # root-mean-square of the train split's penultimate activations; features are divided by it
    key: str  # identifies the dataset, its config, the seed and the code version

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Penultimate features ``[n, F]`` of images ``[n, *shape]`` (``F`` = FEATURES x channels for a
        stacked dataset, channels' features concatenated), on ``x``'s device, memoised per tensor."""
        return _memoised(("features", self.key), x, lambda: self._apply(x, "features") / self.scale)

    @torch.no_grad()
    def logits(self, x: Tensor) -> Tensor:
        """Class logits ``[n, K]``, or ``[n, C, K]`` per channel of a stacked dataset; memoised."""
        return _memoised(("logits", self.key), x, lambda: self._apply(x, "forward"))

    def labels(self, x: Tensor) -> Tensor:
        """Predicted classes ``[n]``, or ``[n, C]`` per channel of a stacked dataset."""
        return self.logits(x).argmax(-1)

    def probabilities(self, x: Tensor) -> Tensor:
        """p(y | x) ``[n, K]``, or ``[n, C, K]`` per channel (softmax of :meth:`logits`)."""
        return self.logits(x).softmax(-1)

    @property
    def feature_dim(self) -> int:
        return FEATURES * (self.channels or 1)

    def _apply(self, x: Tensor, method: str) -> Tensor:
        net = _on_device(self.net, x.device)
        n = len(x)
        if self.channels:
            x = x.reshape(n * self.channels, 1, *x.shape[2:])
        out = torch.cat([getattr(net, method)(x[rows].float()) for rows in _batches(len(x))])
        if self.channels:
            return out.reshape(n, self.channels, -1).flatten(1) if method == "features" else \
                out.reshape(n, self.channels, -1)
        return out


def extractor(dataset: Dataset, seed: int = 0) -> FeatureExtractor:
    """The feature extractor of ``dataset`` (which has a "train" split): from memory, else from the
    cache directory, else trained now and cached."""
    key = cache_key(dataset, seed)
    path = cache_dir("classifiers") / f"{dataset.name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt"
    found = _EXTRACTORS.get(str(path))
    if found is None:
        with exclusive(path):  # a run's workers train a missing classifier once: the others wait, then load it
            found = _load(path, key, dataset) or _train_and_save(path, key, dataset, seed)
        _EXTRACTORS[str(path)] = found
    return found


def cache_key(dataset: Dataset, seed: int) -> str:
    """What a cached classifier depends on, as canonical JSON."""
    return json.dumps({"dataset": dataset.name, "config": as_dict(dataset.config), "seed": seed,
                       "code_version": CODE_VERSION}, sort_keys=True, default=str)


def _train_and_save(path: Path, key: str, dataset: Dataset, seed: int) -> FeatureExtractor:
    train, test = dataset.split("train"), dataset.split("test")
    assert train is not None, f"dataset {dataset.name!r} has no train split to train a classifier on"
    net = train_classifier(train, seed)
    score = accuracy(net, test) if test is not None else float("nan")
    channels = train.labels.shape[1] if per_channel(train) else None
    scale = feature_scale(net, train)
    save_tensors(path, {"key": key, "state": net.state_dict(), "input": list(training_examples(train)[0].shape[1:]),
                        "classes": train.classes, "channels": channels or 0, "accuracy": score, "scale": scale})
    return FeatureExtractor(net, train.classes, channels, score, scale, key)


def _load(path: Path, key: str, dataset: Dataset) -> FeatureExtractor | None:
    saved = load_tensors(path)
    if not isinstance(saved, dict) or saved.get("key") != key:
        return None
    try:
        channels, height, width = saved["input"]
        net = ConvClassifier(channels, height, width, saved["classes"], torch.Generator().manual_seed(0))
        net.load_state_dict(saved["state"])
    except (KeyError, ValueError, TypeError, RuntimeError):  # an old or damaged layout: retrain
        return None
    return FeatureExtractor(net.eval().requires_grad_(False), saved["classes"], saved["channels"] or None,
                            float(saved["accuracy"]), float(saved["scale"]), key)


def _on_device(net: ConvClassifier, device: torch.device) -> ConvClassifier:
    if device.type == "cpu":
        return net
    copies = _DEVICE_COPIES.setdefault(net, {})
    if device not in copies:
        copies[device] = copy.deepcopy(net).to(device)
    return copies[device]


def _forward(net: ConvClassifier, x: Tensor) -> Tensor:
    with torch.no_grad():
        return net(x.float())


def _batches(n: int) -> list[slice]:
    return [slice(start, min(start + EVAL_BATCH, n)) for start in range(0, n, EVAL_BATCH)]


# ---- memos ------------------------------------------------------------------------------------

_EXTRACTORS: dict[str, FeatureExtractor] = {}  # by cache file path
_DEVICE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_TENSOR_MEMO: dict[tuple, tuple[weakref.ref, int, Tensor]] = {}  # (what, key, id(x)) -> (x, version, result)


def _memoised(what: tuple, x: Tensor, compute) -> Tensor:
    """``compute()`` for tensor ``x``, reused while ``x`` is alive and unmodified (same object, same
    in-place version); the entry is dropped when ``x`` is freed."""
    memo_key = (*what, id(x))
    hit = _TENSOR_MEMO.get(memo_key)
    if hit is not None and hit[0]() is x and hit[1] == x._version:
        return hit[2]
    result = compute()
    _TENSOR_MEMO[memo_key] = (weakref.ref(x, lambda _, k=memo_key: _TENSOR_MEMO.pop(k, None)), x._version, result)
    return result
