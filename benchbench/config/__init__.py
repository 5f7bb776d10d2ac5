"""Suites: YAML read within bounds, parsed and validated into a :class:`~benchbench.Suite`, with its
search blocks. Imports: api, registry."""
