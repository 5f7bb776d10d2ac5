import copy

import pytest
import torch
import yaml

torch.set_num_threads(1)

TINY = {
    "name": "tiny",
    "seeds": 2,
    "steps": 30,
    "eval": {"samples": 200, "every": 10, "curve_samples": 100, "plot_samples": 50},
    "datasets": {"ring": {}, "gaussian-1d": {}},
    "objectives": {
        "minimax": {"batch_size": 32, "hidden": [16], "critic_hidden": [16]},
        "nonsaturating": {"batch_size": 32, "hidden": [16], "critic_hidden": [16]},
        "gmmn": {"batch_size": 32, "hidden": [16]},
    },
    "execution": {"workers": 1},
}


@pytest.fixture
def tiny():
    """A suite dict that trains in about a second."""
    return copy.deepcopy(TINY)


@pytest.fixture
def write_suite(tmp_path):
    def write(suite: dict, name: str = "tiny.yaml"):
        path = tmp_path / name
        path.write_text(yaml.safe_dump(suite))
        return path
    return write
