"""From a suite to work: cells (dataset, objective, seed) keyed by their config, jobs of stacked
seeds sized to the device, the trials of a search and their selection, preflight checks.
Imports: api, registry, config (and train's network builders, to size stacks)."""
