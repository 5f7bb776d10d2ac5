"""File names made from labels: safe characters only, and short however long the label is."""

from __future__ import annotations

import hashlib
import re

MAX_LABEL_CHARS = 60  # of a label in a file name; longer ones are cut and end in a hash of the whole


def file_label(label: str, limit: int = MAX_LABEL_CHARS) -> str:
    """``label`` with every run of characters other than letters, digits, ``_.-`` as ``_``; when
    longer than ``limit``, its first characters and 8 hex digits of the label's SHA-256 (so two
    long labels with the same start still name different files)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label)
    if len(safe) <= limit:
        return safe
    return f"{safe[:limit - 9]}-{hashlib.sha256(label.encode()).hexdigest()[:8]}"
