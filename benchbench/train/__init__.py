"""Training one job: stacked networks, the training loop, the per-member optimizer, scoring,
timing, divergence. Imports: api, registry, config, plan."""
