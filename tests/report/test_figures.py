"""plugins/reporters/figures.py: figures drawn across forked processes are the bytes drawn in one, a
figure that raises is named while the others are drawn, one whose process dies is drawn by the
caller, and loading the reporters imports no matplotlib."""

import os
import subprocess
import sys

import pytest

from benchbench_plugins.reporters import figures


def panel(value: float):
    made, ax = figures.subplots(figsize=(2, 1.5), layout="constrained")
    ax.plot([0, 1, 2], [0, value, 1])
    ax.set_title(f"value {value}", fontsize=8)
    return made


def broken():
    raise ValueError("this figure cannot be drawn")


def dies(value: float):
    if os.getpid() != PARENT[0]:  # in a forked child: it dies, and the caller draws the figure itself
        os._exit(3)
    return panel(value)


PARENT = [os.getpid()]


def makes(*extra):
    found = {f"panel {v}": (lambda v=v: panel(v)) for v in (1.0, 2.0, 3.0, 4.0)}
    found.update(extra)
    return found


def test_figures_drawn_in_several_processes_are_the_bytes_drawn_in_one():
    alone = figures.render_all(makes(), 50, processes=1)
    together = figures.render_all(makes(), 50, processes=3, costs={"panel 4.0": 2.0})
    assert list(together) == list(alone) == ["panel 1.0", "panel 2.0", "panel 3.0", "panel 4.0"]
    assert together == alone and len(set(alone.values())) == 4
    assert all(png.startswith(b"\x89PNG") for png in alone.values())


@pytest.mark.parametrize("processes", [1, 2])
def test_a_figure_that_raises_is_named_and_the_others_are_drawn(processes):
    with pytest.raises(figures.FigureError, match="bad: ValueError: this figure cannot be drawn") as raised:
        figures.render_all(makes(("bad", broken)), 50, processes=processes)
    assert set(raised.value.drawn) == set(makes()) and set(raised.value.failed) == {"bad"}


@pytest.mark.skipif(sys.platform != "linux", reason="figures are drawn in forked processes on Linux only")
def test_a_figure_whose_process_died_is_drawn_by_the_caller():
    PARENT[0] = os.getpid()
    drawn = figures.render_all({v: (lambda v=v: dies(v)) for v in (1.0, 2.0, 3.0, 4.0)}, 50, processes=2)
    assert list(drawn.values()) == list(figures.render_all(makes(), 50, processes=1).values())


def test_loading_the_plugins_imports_no_matplotlib():
    code = ("import sys; from benchbench import default_registry; default_registry(); "
            "print(sorted(m for m in sys.modules if m.startswith('matplotlib')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"
