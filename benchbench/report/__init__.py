"""From a run directory to reports: loading a run into a :class:`~benchbench.RunReport`, the
tables and reporters, ``benchbench report`` and ``benchbench compare``. Imports: every layer but engines."""
