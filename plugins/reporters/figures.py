"""Matplotlib for the reporters: imported on first use, figures drawn straight onto an Agg canvas,
several at once in forked processes.

- **Lazy.** Nothing here imports matplotlib until a figure is made, so a worker process that loads
  the plugins to train (or ``benchbench --help``) never pays for it.
- **No pyplot.** Figures are :class:`matplotlib.figure.Figure` objects with no global figure manager
  (nothing to close, the user's backend untouched). :func:`png` gives the figure the file's
  resolution and draws it once on its own Agg canvas: ``savefig`` would draw it twice, once with
  drawing disabled to lay it out and once for real, for the same pixels (the bytes are identical).
- **In parallel.** :func:`render_all` draws a list of figures across up to ``processes`` processes:
  this one and children forked from it (which inherit the run's data, nothing is pickled). Each
  process takes the next figure not yet taken, longest first, and sends back its PNG; the caller
  writes the files, so a file is complete or absent. A figure whose child died is drawn here; one
  that raised is named in a :class:`FigureError`, the others drawn all the same. Where ``fork`` is
  unavailable (not Linux) or one process is asked for, figures are drawn here one after the other:
  the bytes are the same.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

Make = Callable[[], Any]  # () -> a matplotlib Figure
Key = TypeVar("Key")
STALL_S = 300.0  # a child silent this long is ended, its figures drawn here


class FigureError(RuntimeError):
    """Figures that raised while drawn, each named with its error; ``drawn`` holds the others' PNGs."""

    def __init__(self, drawn: dict, failed: dict):
        super().__init__("; ".join(f"{key}: {error}" for key, error in failed.items()))
        self.drawn, self.failed = drawn, failed


def figure(**options):
    """A new :class:`matplotlib.figure.Figure` (``figsize``, ``layout``...), outside pyplot."""
    from matplotlib.figure import Figure
    return Figure(**options)


def subplots(rows: int = 1, columns: int = 1, **options):
    """(figure, axes) as ``pyplot.subplots`` makes them; ``squeeze`` and ``figsize``, ``layout``... as there."""
    squeeze = options.pop("squeeze", True)
    made = figure(**options)
    return made, made.subplots(rows, columns, squeeze=squeeze)


def line(**options):
    """A :class:`matplotlib.lines.Line2D` with no data: a legend handle."""
    from matplotlib.lines import Line2D
    return Line2D([], [], **options)


def png(made, dpi: int) -> bytes:
    """``made`` rendered as a PNG at ``dpi``: laid out and drawn once on an Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    made.set_dpi(dpi)
    buffer = io.BytesIO()
    FigureCanvasAgg(made).print_png(buffer)
    return buffer.getvalue()


def default_processes() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def render_all(makes: Mapping[Key, Make], dpi: int, processes: int = 0,
               costs: Mapping[Key, float] | None = None) -> dict[Key, bytes]:
    """The PNG of each figure ``makes[key]()`` at ``dpi``, drawn by up to ``processes`` processes
    (0: :func:`default_processes`), the largest ``costs`` first. Raises :class:`FigureError`
    naming every figure that raised, after drawing the others (its ``drawn``)."""
    keys = list(makes)
    order = sorted(range(len(keys)), key=lambda i: -(costs or {}).get(keys[i], 0.0))
    processes = min(processes or default_processes(), len(keys))
    found: dict[int, bytes | str] = {}
    if processes > 1 and sys.platform == "linux":
        _in_processes([makes[k] for k in keys], dpi, order, processes, found)
    for i in order:  # all of them without children; else those a child left (it died)
        if i not in found:
            found[i] = _draw(makes[keys[i]], dpi)
    drawn = {keys[i]: found[i] for i in range(len(keys)) if isinstance(found[i], bytes)}
    failed = {keys[i]: found[i] for i in range(len(keys)) if isinstance(found[i], str)}
    if failed:
        raise FigureError(drawn, failed)
    return drawn


def _draw(make: Make, dpi: int) -> bytes | str:
    """The PNG, or the error it raised, as text."""
    try:
        return png(make(), dpi)
    except Exception as exc:  # noqa: BLE001 - named by render_all, the other figures drawn
        return f"{type(exc).__name__}: {exc}"


def _in_processes(makes: Sequence[Make], dpi: int, order: list[int], processes: int,
                  found: dict[int, bytes | str]) -> None:
    """Draw the figures in this process and ``processes - 1`` forked children, each taking the next
    index of ``order`` from a shared counter; fills ``found``. A child writes each PNG into a
    scratch folder and says so on its pipe (a few bytes: it never waits for this process to read).
    Children ignore Ctrl-C (this process ends them), stop when this process goes away, and are
    ended when silent for :data:`STALL_S`."""
    import multiprocessing
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("fork")
    taken = context.Value("i", 0)
    children = {}
    with tempfile.TemporaryDirectory(prefix="benchbench-figures-") as scratch:
        try:
            for _ in range(processes - 1):
                reader, writer = context.Pipe(duplex=False)
                child = context.Process(target=_child, args=(makes, dpi, order, taken, writer, os.getpid(), scratch),
                                        daemon=True)
                child.start()
                writer.close()
                children[reader] = child
            for i in _next(order, taken):
                found[i] = _draw(makes[i], dpi)
            while children:
                ready = wait(list(children), timeout=STALL_S)
                if not ready:  # stalled: the figures it took are drawn here
                    return
                for reader in ready:
                    try:
                        i, error = reader.recv()
                        found[i] = error if error is not None else Path(scratch, f"{i}.png").read_bytes()
                    except (EOFError, OSError):  # the child ended (a figure it took and did not send is drawn here)
                        children.pop(reader).join()
        finally:
            for reader, child in children.items():
                child.terminate()
                child.join()
                reader.close()


def _next(order: list[int], taken) -> Iterator[int]:
    """The figures this process draws: the next untaken index of ``order``, until none is left."""
    while True:
        with taken.get_lock():
            position = taken.value
            taken.value += 1
        if position >= len(order):
            return
        yield order[position]


def _child(makes: Sequence[Make], dpi: int, order: list[int], taken, writer, parent: int, scratch: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which ends this process
    torch = sys.modules.get("torch")
    if torch is not None:  # OpenMP's threads do not survive a fork: one thread, no parallel region
        torch.set_num_threads(1)
    for i in _next(order, taken):
        if os.getppid() != parent:
            return
        drawn = _draw(makes[i], dpi)
        if isinstance(drawn, bytes):
            Path(scratch, f"{i}.png").write_bytes(drawn)
        writer.send((i, None if isinstance(drawn, bytes) else drawn))
    writer.close()
