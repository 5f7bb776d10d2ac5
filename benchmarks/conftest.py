"""Benchmarks record where they ran, and print benchbench's overhead over hand-written loops."""

import os
import statistics

import torch


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info["torch"] = torch.__version__
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return
    by_group = {}
    for bench in session.benchmarks:
        by_group.setdefault(bench.group, {})[bench.extra_info.get("impl")] = bench.stats.median
    lines = [f"  {group}: benchbench / hand-written median = {times['benchbench'] / times['handwritten']:.3f}"
             for group, times in sorted(by_group.items()) if {"benchbench", "handwritten"} <= set(times)]
    if lines:
        terminalreporter.write_line("benchbench overhead over a minimal hand-written loop (same model, same batch):")
        for line in lines:
            terminalreporter.write_line(line)
