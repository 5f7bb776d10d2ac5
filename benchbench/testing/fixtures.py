"""The kit's pytest plugin: the ``benchmark_training_step`` fixture. The only module of the kit that
imports pytest; enable it with ``pytest_plugins = ["benchbench.testing.fixtures"]``."""

import pytest
import torch

from .stepper import training_stepper


@pytest.fixture
def benchmark_training_step(request):
    """``benchmark_training_step(objective, settings=None, dataset=None, members=1, steps=20,
    rounds=5, device="cpu")`` times ``steps`` training steps per round with pytest-benchmark's
    ``benchmark`` fixture (one warm-up round), records objective, members, steps, device and
    torch threads in ``extra_info`` (and ``member_steps_per_s`` when timing is on), and returns
    the fixture. Threads are left as they are: set them (``torch.set_num_threads``) to measure
    what you mean to, e.g. 1, as each of benchbench's worker processes has."""
    try:
        benchmark = request.getfixturevalue("benchmark")
    except pytest.FixtureLookupError:
        pytest.fail("benchmark_training_step needs pytest-benchmark: pip install pytest-benchmark", pytrace=False)

    def run(objective, settings=None, dataset=None, members: int = 1, steps: int = 20, rounds: int = 5,
            device: str | torch.device = "cpu"):
        step = training_stepper(objective, settings, dataset, members, device)
        device = torch.device(device)

        def one_round() -> None:
            for _ in range(steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize(device)

        name = objective if isinstance(objective, str) else objective.name
        benchmark.extra_info.update(objective=name, members=members, steps=steps, device=str(device),
                                    torch_threads=torch.get_num_threads())
        benchmark.pedantic(one_round, rounds=rounds, iterations=1, warmup_rounds=1)
        if benchmark.stats is not None:  # None when timing is off (--benchmark-disable)
            benchmark.extra_info["member_steps_per_s"] = steps * members / benchmark.stats.stats.median
        return benchmark
    return run


