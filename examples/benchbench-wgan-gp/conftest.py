# benchbench's test kit: conformance checks and the benchmark_training_step fixture.
pytest_plugins = ["benchbench.testing.fixtures"]
