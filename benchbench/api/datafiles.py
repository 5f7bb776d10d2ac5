"""Where the files of a dataset are looked for, in which forms, and what is said when they are not there.

:func:`locate` takes the first directory of a list that holds every :class:`RemoteFile` of a dataset,
each under its published name or, for a ``.gz`` name, decompressed under the name without the suffix,
and verifies each (:func:`~benchbench.api.download.verify`: the published checksum of the file, or the
recorded checksum of its decoded content). The usual directories, in order (:func:`dataset_places`):

1. the suite's ``root`` for the dataset, then torchvision's layout under it (``<root>/FashionMNIST/raw``);
2. the cache directory, ``datasets/<name>`` (``$BENCHBENCH_CACHE`` or ``~/.cache/benchbench``);
3. the system's dataset directory ``/usr/share/datasets/<name>``, where Debian's dataset packages
   install their files (``apt-get install dataset-fashion-mnist``).

When none holds them all, the missing files are downloaded into the first directory (:func:`download`).
A directory holding only some of the files, with nothing to complete them, is one line naming the
directory, the files it holds and those it lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .cache import cache_dir
from .download import RemoteFile, download, verify
from .errors import ConfigError

SYSTEM_DATASETS = Path("/usr/share/datasets")  # Debian's dataset packages install into <this>/<name>


def dataset_places(name: str, root: str | Path | None = None, torchvision_folder: str = "") -> list[Path]:
    """The directories the files of dataset ``name`` are looked for in, in order: ``root`` (and
    ``root/<torchvision_folder>/raw``) when given, the cache's ``datasets/<name>``, then
    ``/usr/share/datasets/<name>``. The first is where missing files are downloaded to."""
    places = []
    if root:
        root = Path(root).expanduser()
        places += [root, root / torchvision_folder / "raw"] if torchvision_folder else [root]
    return [*places, cache_dir("datasets", name), SYSTEM_DATASETS / name]


def present(files: Sequence[RemoteFile], directory: Path) -> dict[str, Path]:
    """The files of ``files`` that ``directory`` holds (name -> path), each as published or
    decompressed (its name without ``.gz``)."""
    found = {}
    for file in files:
        for path in (directory / file.name, directory / file.name.removesuffix(".gz")):
            if path.is_file():
                found[file.name] = path
                break
    return found


def locate(files: Sequence[RemoteFile], places: Sequence[Path], *, allowed: bool = True, where: str = "",
           hint: str = "", package: str = "") -> dict[str, Path]:
    """Every file of ``files``, verified, from the first of ``places`` that holds them all; else
    downloaded into ``places[0]`` when ``allowed``. name -> path.

    ``where`` and ``hint`` are :func:`download`'s; ``package`` names the system package that installs
    the files into the last place, for the error of files that could not be had.

    Raises :class:`~benchbench.DataFileError` for a file that fails verification, and a one-line
    :class:`~benchbench.ConfigError` for files that could not be had, naming a directory that holds
    only some of them.
    """
    places = [Path(p) for p in places]
    held = [(directory, present(files, directory)) for directory in places]
    for directory, paths in held:
        if len(paths) == len(files):
            for file in files:
                verify(paths[file.name], file)
            return paths
    if package:
        hint = f"{hint + '; ' if hint else ''}or install the system package {package} " \
               f"(apt-get install {package}), which puts them in {places[-1]}"
    partial = next(((directory, paths) for directory, paths in held if paths), None)
    if partial:
        directory, paths = partial
        missing = [f.name for f in files if f.name not in paths]
        note = f"{directory} holds {', '.join(paths)} but not {', '.join(missing)}"
        if not allowed:
            raise ConfigError(where, f"{note}; place the missing files there{'; ' + hint if hint else ''}")
        if directory != places[0]:
            hint = f"{note}{'; ' + hint if hint else ''}"
    return download(files, places[0], allowed=allowed, where=where, hint=hint)
