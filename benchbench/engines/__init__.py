"""Where jobs run: one :class:`~benchbench.engines.base.Engine` interface, this machine's process pool
(:mod:`.local`) and Ray (:mod:`.ray_engine`). Imports: everything below report."""
