"""Checks of a finished cell's two files, so that a damaged one is run again instead of trusted.

A cell counts as done only when its ``.json`` document has every key the tables and reporters
read, with the right types (``scores`` a mapping of names to numbers, ``curves`` a list of
``[step, metric, value]``...), and its ``.npy`` samples load without pickles as a floating-point
array of at least two dimensions. :func:`read_cell` is the one reader of cell files: a run asks it
whether a cell is done, a report reads the cells through it. A cell file of another schema makes
the directory unusable for this benchbench: one line saying to run into a new directory.
"""

from __future__ import annotations

import json
import numbers
from pathlib import Path
from typing import Any

import numpy as np

from ..api.errors import ConfigError
from ..plan.cells import SCHEMA_VERSION

# key -> the types its value may have (JSON null is None)
FIELDS: dict[str, tuple[type, ...]] = {
    "schema": (int,), "cell": (str,), "job": (str,), "dataset": (str,), "objective": (str,), "seed": (int,),
    "scores": (dict,), "curves": (list,), "problems": (list,), "notes": (dict,), "diverged": (dict, type(None)),
    "config": (dict,),
}


def read_cell(path: Path, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the document of cell ``key`` at ``path``, None) when its ``.json`` and ``.npy`` files both
    validate; (None, what is wrong) when either is damaged; (None, None) when it is missing.
    Raises a ConfigError for a cell file of another schema."""
    document, why = read_document(path, key)
    if document is None:
        return None, why
    why = samples_problem(path.with_suffix(".npy"))
    return (None, why) if why else (document, None)


def read_document(path: Path, key: str) -> tuple[dict[str, Any] | None, str | None]:
    """(the cell document at ``path``, None), or (None, what is wrong with it); a missing file is (None, None)."""
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except IsADirectoryError:
        return None, f"{path.name} is a directory"
    except OSError as exc:
        return None, f"{path.name} cannot be read ({exc.strerror})"
    except (ValueError, RecursionError):
        return None, f"{path.name} is not valid JSON"
    schema = document.get("schema") if isinstance(document, dict) else None
    if isinstance(schema, int) and schema != SCHEMA_VERSION:
        raise ConfigError(str(path), f"cell file of schema {schema!r}; this benchbench reads schema "
                                     f"{SCHEMA_VERSION}: run the suite again into a new --out directory")
    why = document_problem(document, key)
    return (None, f"{path.name} {why}") if why else (document, None)


def document_problem(document: Any, key: str) -> str | None:
    """What makes ``document`` unusable as cell ``key``'s record, or None."""
    if not isinstance(document, dict):
        return f"holds {type(document).__name__}, not a cell record"
    for name, types in FIELDS.items():
        if name not in document:
            return f"lacks {name!r}"
        value = document[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return f"has {name!r} of type {type(value).__name__}"
    if "rung" in document and (not isinstance(document["rung"], int) or isinstance(document["rung"], bool)
                               or document["rung"] < 0):
        return "has a 'rung' that is not a rung index"
    if document["cell"] != key:
        return f"is the record of cell {str(document['cell'])[:40]!r}"
    if not all(isinstance(k, str) and _number(v) for k, v in document["scores"].items()):
        return "has 'scores' that are not all numbers"
    if not all(isinstance(c, list) and len(c) == 3 and isinstance(c[0], int) and isinstance(c[1], str)
               and _number(c[2]) for c in document["curves"]):
        return "has 'curves' that are not all [step, metric, value]"
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in document["notes"].items()):
        return "has 'notes' that are not all text"
    return None


def label_problem(document: dict[str, Any], name: str, dataset: str, objective: str, seed: int) -> str | None:
    """What makes the valid ``document`` (file ``name``) not the record of (``dataset``, ``objective``,
    ``seed``), the labels its key stands for: an edited label or seed, or None."""
    found, wanted = (document["dataset"], document["objective"], document["seed"]), (dataset, objective, seed)
    config = document["config"]
    seed_in_config = config.get("seed", seed) if isinstance(config, dict) else seed
    if found == wanted and seed_in_config == seed:
        return None
    return f"{name} is labelled {found[0]}/{found[1]} seed {found[2]} (config seed {seed_in_config}), but its key is " \
           f"that of {dataset}/{objective} seed {seed}"


def samples_problem(path: Path) -> str | None:
    """What makes the samples file at ``path`` unusable, or None."""
    try:
        samples = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        return f"{path.name} is missing"
    except IsADirectoryError:
        return f"{path.name} is a directory"
    except OSError as exc:
        return f"{path.name} cannot be read ({exc.strerror})" if exc.strerror else f"{path.name} is damaged"
    except (ValueError, EOFError):
        return f"{path.name} is not a numpy array file (damaged or truncated)"
    if not isinstance(samples, np.ndarray) or samples.dtype.kind != "f" or samples.ndim < 2:
        return f"{path.name} holds {getattr(samples, 'dtype', '?')} of {getattr(samples, 'ndim', '?')} dimensions, " \
               f"not float samples"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
