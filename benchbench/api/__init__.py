"""What plugins implement and use: the objective, dataset, metric and reporter contracts, their
outputs and typed settings, the hook specs, errors, the cache and verified downloads. Imports nothing
else of benchbench."""
