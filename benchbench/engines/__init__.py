"""Where jobs run: one :class:`~benchbench.engines.base.Engine` interface, this machine's process pool
(:mod:`.local`) and Ray (:mod:`.ray_engine`), and the one check of a suite both make before any work
(:mod:`.check`). Imports: everything below report."""
