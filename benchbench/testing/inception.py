"""Inception-v3 weights drawn at random, in torch-fidelity's layout: the wiring of the ``features:
inception`` metrics (loading through the user's path, the checksum, the cache) tested and timed
without the published 92 MB file. Needs torch-fidelity (``pip install "benchbench[inception]"``)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

POOL = "2048"  # torch-fidelity's name of the pool features


def random_inception_weights(directory: Path, seed: int = 0) -> Path:
    """``directory/random-inception.pth``: the state dict of torch-fidelity's Inception-v3 with its
    convolutions drawn He-normal from ``seed`` (so that activations neither vanish nor explode
    through the 94 layers); the global random state is left as it was."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class Unloaded(FeatureExtractorInceptionV3):
        def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the fresh parameters
            return None

    directory = Path(directory)
    empty = directory / "empty.pth"  # the constructor loads a file: this one, ignored
    torch.save({}, empty)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Unloaded("random", [POOL], feature_extractor_weights_path=str(empty))
        for parameter in net.parameters():
            if parameter.ndim > 1:
                torch.nn.init.normal_(parameter, 0, math.sqrt(2 / parameter[0].numel()))
    path = directory / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path
