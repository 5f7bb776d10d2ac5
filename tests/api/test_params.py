import dataclasses
from typing import Literal

import pytest

from benchbench import ConfigError, param
from benchbench.api.params import build, describe


@dataclasses.dataclass(frozen=True)
class Example:
    lr: float = param(1e-3, "learning rate", gt=0)
    steps: int = param(10, "steps", ge=1)
    widths: tuple[int, ...] = param((4, 4), "widths", gt=0)
    betas: tuple[float, float] = param((0.5, 0.9), "betas", ge=0, le=1)
    mode: Literal["a", "b"] = param("a", "mode")
    flag: bool = param(False, "flag")

    def __post_init__(self):
        if self.steps > 100 and self.mode == "b":
            raise ValueError("steps: at most 100 in mode b")


def test_defaults_and_coercion():
    built = build(Example, {"lr": 1, "widths": [8], "betas": [0.1, 0.2], "mode": "b"}, "f.yaml: x")
    assert built == Example(lr=1.0, widths=(8,), betas=(0.1, 0.2), mode="b")
    assert isinstance(built.lr, float)
    assert build(Example, {"lr": "1e-4"}, "w").lr == 1e-4  # YAML 1.1 reads 1e-4 as text
    assert build(Example, {"widths": 3}, "w").widths == (3,)


@pytest.mark.parametrize("values, message", [
    ({"lrr": 1}, "f.yaml: x.lrr: unknown setting; allowed: lr, steps, widths, betas, mode, flag (did you mean 'lr'?)"),
    ({"lr": "fast"}, "f.yaml: x.lr: expected a number, got 'fast'"),
    ({"lr": 0}, "f.yaml: x.lr: must be > 0, got 0.0"),
    ({"steps": 1.5}, "f.yaml: x.steps: expected a whole number, got 1.5"),
    ({"steps": True}, "f.yaml: x.steps: expected a whole number, got True"),
    ({"widths": [4, 0]}, "f.yaml: x.widths: must be > 0, got 0"),
    ({"betas": [0.5]}, "f.yaml: x.betas: expected a list of 2 values, got [0.5]"),
    ({"mode": "c"}, "f.yaml: x.mode: got 'c'; allowed: a, b"),
    ({"flag": "yes please"}, "f.yaml: x.flag: expected true or false, got 'yes please'"),
    ({"steps": 200, "mode": "b"}, "f.yaml: x.steps: at most 100 in mode b"),
    ([1, 2], "f.yaml: x: expected a mapping of settings, got [1, 2]"),
])
def test_errors_name_the_key(values, message):
    with pytest.raises(ConfigError) as info:
        build(Example, values, "f.yaml: x")
    assert str(info.value) == message


def test_describe_lists_defaults_and_docs():
    rows = {r["name"]: r for r in describe(Example)}
    assert rows["lr"]["default"] == 1e-3 and rows["lr"]["doc"] == "learning rate"
    assert rows["mode"]["type"] == "a | b"
