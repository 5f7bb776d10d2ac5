"""The ``grids`` reporter: one PNG grid of generated images per (dataset, objective).

Writes ``<run>/plots/grid_<dataset>_<objective>.png`` (the ``(data)`` reference included as
``grid_<dataset>__data_.png``): the first ``side`` x ``side`` samples of the lowest seed, tiled
with one-pixel white gaps at the images' own resolution, enlarged (nearest neighbour) to at least
``min_pixels`` a side. Only for image datasets (samples ``[n, C, H, W]`` with 1 or 3 channels);
other data gets no file. Next to the ``plots`` reporter's ``samples_<dataset>.png``, which puts
all objectives of a dataset side by side, these are one full-size file each.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import numpy as np

from benchbench import REFERENCE, Reporter, RunReport, atomic_write, file_label, hookimpl, param


@dataclasses.dataclass(frozen=True)
class GridsConfig:
    side: int = param(8, "images per row and per column of a grid", ge=1, le=64)
    min_pixels: int = param(256, "smallest width of a grid in pixels (small images are enlarged)", ge=1, le=4096)


class Grids(Reporter):
    """Writes ``plots/grid_<dataset>_<objective>.png`` for datasets of images."""

    name = "grids"
    Config = GridsConfig

    def report(self, run: RunReport, directory: Path) -> list[Path]:
        folder = Path(directory) / "plots"
        written = []
        for (label, objective), seed in lowest_seeds(run.samples).items():
            images = np.asarray(_numpy(run.samples[label, objective, seed]), dtype=np.float64)
            if not is_image_batch(images):
                continue
            low, high = value_range(run, label)
            grid = mosaic(images[: self.config.side**2], low, high, self.config.side)
            scale = max(1, math.ceil(self.config.min_pixels / grid.shape[1]))
            grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
            path = folder / f"grid_{file_label(label)}_{file_label(objective)}.png"
            atomic_write(path, grid_png(grid))
            written.append(path)
        return written


def grid_png(grid: np.ndarray) -> bytes:
    """A mosaic (values in [0, 1]) as a grayscale PNG, rendered in memory, pixel for pixel."""
    from matplotlib.image import imsave
    buffer = io.BytesIO()
    imsave(buffer, grid, cmap="gray", vmin=0.0, vmax=1.0, format="png")
    return buffer.getvalue()


def lowest_seeds(samples: dict) -> dict[tuple[str, str], int]:
    """(dataset, objective) -> its lowest seed, in the order the samples were recorded."""
    seeds: dict[tuple[str, str], int] = {}
    for dataset, objective, seed in samples:
        key = (dataset, objective)
        seeds[key] = min(seed, seeds.get(key, seed))
    return seeds


def is_image_batch(x: np.ndarray) -> bool:
    """True for a non-empty ``[n, C, H, W]`` batch with 1 (grey) or 3 (RGB) channels."""
    return x.ndim == 4 and x.shape[1] in (1, 3) and len(x) > 0


def value_range(run: RunReport, label: str) -> tuple[float, float]:
    """The (low, high) shown as black and white: the dataset's ``bounds``, else the range of its
    ``(data)`` reference samples, else (0, 1)."""
    dataset = run.datasets.get(label)
    if dataset is not None and dataset.bounds is not None:
        return float(dataset.bounds[0]), float(dataset.bounds[1])
    references = [x for (d, o, _), x in run.samples.items() if d == label and o == REFERENCE]
    values = _numpy(references[0]) if references else np.zeros(0)
    values = values[np.isfinite(values)]
    return (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)


def mosaic(images: np.ndarray, low: float, high: float, columns: int) -> np.ndarray:
    """``images`` ``[n, C, H, W]`` scaled from [low, high] to [0, 1] (non-finite values: 0) and
    tiled ``columns`` wide with 1-pixel white gaps: ``[rows, cols]`` (grey) or ``[rows, cols, 3]``."""
    images = np.clip(np.nan_to_num((images - low) / max(high - low, 1e-12), nan=0.0, posinf=1.0, neginf=0.0), 0, 1)
    n, c, h, w = images.shape
    rows, columns = math.ceil(n / columns), min(columns, n)
    tiles = np.ones((rows * columns, c, h + 1, w + 1))
    tiles[:n, :, :h, :w] = images
    grid = tiles.reshape(rows, columns, c, h + 1, w + 1).transpose(0, 3, 1, 4, 2)
    grid = grid.reshape(rows * (h + 1), columns * (w + 1), c)
    grid = grid[:-1, :-1]  # no gap after the last row and column
    return grid[..., 0] if c == 1 else grid


def _numpy(x) -> np.ndarray:
    """A tensor (moved to the CPU) or an array, as a numpy array."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


@hookimpl
def benchbench_reporters():
    return [Grids]
