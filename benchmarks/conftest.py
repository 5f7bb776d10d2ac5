"""Benchmarks record where they ran, and print benchbench's overhead over hand-written loops."""

import os

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
    write = terminalreporter.write_line
    runs, steps, sampling, images = {}, {}, {}, {}
    for bench in session.benchmarks:
        info = bench.extra_info
        if "metric" in info:  # test_evaluation: each metric plugin, timed only
            continue
        if "family" in info:  # test_evaluation: image samplers against their own training step
            images[info["family"], info["dataset"]] = (info["samples"] / bench.stats.median, info["nfe"],
                                                       info["sample_flops"] * info["samples"] * info["members"]
                                                       / bench.stats.median / 1e9, info["train_gflops"])
        elif "sampler" in info:  # test_families: samples/s per member of each sampler
            sampling[info["sampler"]] = (info["samples"] / bench.stats.median, info["nfe"])
        elif "members" in info:  # test_stacked_step: per-model throughput = steps x members / median time
            steps.setdefault(bench.group, {})[(info["impl"], info["members"])] = \
                info["steps"] * info["members"] / bench.stats.median
        else:  # test_step_overhead: whole runs
            runs.setdefault(bench.group, {})[info.get("impl")] = bench.stats.median
    lines = [f"  {group}: benchbench / hand-written median time = {t['benchbench'] / t['handwritten']:.3f}"
             for group, t in sorted(runs.items()) if {"benchbench", "handwritten"} <= set(t)]
    ladders = [f"  {group}: ladder / single median time = {t['ladder'] / t['single']:.3f}"
               for group, t in sorted(runs.items()) if {"ladder", "single"} <= set(t)]
    if ladders:  # test_ladder_cost
        write("a budget ladder (one training scored at every rung) against a single run at its top rung:")
        for line in ladders:
            write(line)
    if lines:
        write("benchbench overhead over a minimal hand-written loop (same model, same batch):")
        for line in lines:
            write(line)
    trials = {group: rates for group, rates in steps.items() if ("one-at-a-time", 32) in rates}
    if trials:  # test_search_stack: 32 trial models (16 trials x 2 seeds) stacked vs one at a time
        write("per-model training throughput of 32 trial models as one stack, against one at a time:")
        for group, rates in sorted(trials.items()):
            write(f"  {group}: stacked / one at a time = "
                  f"{rates[('stacked', 32)] / rates[('one-at-a-time', 32)]:.2f}x per model")
    handwritten = {group: rates for group, rates in steps.items() if ("handwritten", 1) in rates and group not in trials}
    if handwritten:
        write("per-model training throughput relative to one model in a hand-written loop:")
        for group, rates in sorted(handwritten.items()):
            base = rates[("handwritten", 1)]
            ratios = ", ".join(f"{impl} x{members}: {rate / base:.2f}x" for (impl, members), rate
                               in sorted(rates.items()) if impl != "handwritten")
            write(f"  {group}: {ratios}  (hand-written: {base:.0f} steps/s)")
    stacked = {group: rates for group, rates in steps.items()
               if ("handwritten", 1) not in rates and {("benchbench", 1), ("benchbench", 32)} <= set(rates)}
    if stacked:  # test_families
        write("per-model training throughput of 32 stacked seeds, against one model (same code):")
        for group, rates in sorted(stacked.items()):
            write(f"  {group}: x32 / x1 = {rates[('benchbench', 32)] / rates[('benchbench', 1)]:.2f}x per model")
    if sampling:
        write("samples/s per member of each sampler (8 stacked members), network evaluations per sample:")
        for sampler, (rate, nfe) in sampling.items():
            write(f"  {sampler}: {rate:,.0f} samples/s, nfe {nfe}")
    if images:
        write("image samplers (3 stacked members): samples/s per member, sampler GFLOP/s against the training step's:")
        for (family, dataset), (rate, nfe, gflops, train) in sorted(images.items()):
            ratio = f" = {gflops / train:.2f}x" if train else ""
            write(f"  {family} on {dataset}: {rate:,.0f} samples/s, nfe {nfe}, {gflops:.1f} GFLOP/s sampling, "
                  f"{train or float('nan'):.1f} GFLOP/s training{ratio}")
