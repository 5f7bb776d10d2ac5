"""From a suite to work: the blueprint of each (dataset, objective) (what it builds and costs), cells
(dataset, objective, seed) keyed by their config, jobs of stacked seeds sized to the device by the
blueprints, the trials of a search and their selection, preflight checks (data, metrics, sizes).
Imports: api, registry, config, nets."""
