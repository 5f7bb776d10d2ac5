"""The marks of :func:`benchbench.tables` read back for other formats than markdown (HTML, LaTeX).

:func:`benchbench.tables` writes a tied-best cell (verdict "best" or "tied": not significantly worse
than the best objective, see :mod:`benchbench.stats.verdicts`) as ``**text**``, and
:func:`benchbench.footnote` says in markdown what the marks mean. A summary without verdicts (a
reporter given an older summary) has no marks: nothing is bold.
"""

from __future__ import annotations


def unmark(text: str) -> tuple[str, bool]:
    """(``text`` without its markdown bold, whether it was bold)."""
    text = str(text)
    if len(text) > 4 and text.startswith("**") and text.endswith("**"):
        return text[2:-2], True
    return text, False


def plain(markdown: str) -> str:
    """A footnote's markdown (``**Bold**``, ``*label*``) as plain text."""
    return markdown.replace("**", "").replace("*", "")
