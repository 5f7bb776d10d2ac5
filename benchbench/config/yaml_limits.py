"""Bounds on what a YAML document may cost before anything looks at its values.

YAML aliases let a few hundred bytes stand for billions of values (the "billion laughs"), and a
long list is a long list: either would take minutes and gigabytes to walk, print or validate.
A suite is a few hundred values, so :class:`BoundedComposer` refuses a document whose *expanded*
size (every alias counted as the values it stands for) passes :data:`MAX_VALUES`, or a list or
mapping longer than :data:`MAX_ITEMS`, while the document is being composed, before a single value
is built; files above :data:`MAX_BYTES` are refused before they are parsed. Costs are counted once per anchored node, so the check itself
takes time linear in the text.
"""

from __future__ import annotations

import yaml

MAX_BYTES = 128 << 10  # 128 KiB of YAML text: a suite is a few KiB (10,000 seeds written out: 50 KiB)
MAX_VALUES = 20_000  # scalars, lists and mappings of a document once every alias is expanded
MAX_ITEMS = 10_000  # entries of one list or mapping (as many as the most seeds a suite may have)


class DocumentTooLarge(yaml.YAMLError):
    """A document that would expand beyond :data:`MAX_VALUES` values, or refers to itself."""

    def __init__(self, message: str, mark: yaml.Mark | None = None):
        super().__init__(message)
        self.problem, self.problem_mark = message, mark


class BoundedComposer(yaml.composer.Composer):
    """A composer that counts the values of the document as it is composed, aliases expanded,
    and stops at :data:`MAX_VALUES` (mix into a loader before its composer)."""

    max_values = MAX_VALUES

    def compose_document(self):
        self._spent, self._sizes = 0, {}  # values so far; id(node) -> expanded size of a finished node
        try:
            return super().compose_document()
        finally:
            del self._sizes

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            node = self.anchors.get(event.anchor)
            if node is not None:  # (an unknown anchor is the composer's error, below)
                size = self._sizes.get(id(node))
                if size is None:
                    raise DocumentTooLarge(f"alias *{event.anchor} refers to a value that contains it",
                                           event.start_mark)
                self._spend(size, event.start_mark)
            return super().compose_node(parent, index)
        start, mark = self._spent, self.peek_event().start_mark
        if parent is not None and len(parent.value) >= MAX_ITEMS:  # one entry too many: stop here
            what = "list" if isinstance(parent, yaml.SequenceNode) else "mapping"
            raise DocumentTooLarge(f"a {what} of more than {MAX_ITEMS:,} entries", mark)
        self._spend(1, mark)
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = self._spent - start
        return node

    def _spend(self, values: int, mark: yaml.Mark) -> None:
        self._spent += values
        if self._spent > self.max_values:
            raise DocumentTooLarge(f"the document expands to more than {self.max_values:,} values (aliases "
                                   f"counted); a suite needs a few hundred", mark)
