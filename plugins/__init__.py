"""benchbench's built-in plugins. Each module listed under ``[project.entry-points.benchbench]``
is a plugin like any third-party one: it imports only the public ``benchbench`` API (and helpers
of this package) and registers through the same entry-point group."""
