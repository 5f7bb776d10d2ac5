"""Finding plugins (entry points, pluggy) and validating what their hooks return into a
:class:`~benchbench.Registry` of components. Imports: api."""
