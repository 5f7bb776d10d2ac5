"""The run directory: one add-only file per finished cell, validated on every read, the resolved
suite, the environment, the lock, one-line file-system errors. Imports: api, config, plan, train."""
