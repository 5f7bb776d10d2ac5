"""The jobs of a suite, made once (:func:`benchbench.plan.cells.plan`): identical settings under other
labels train once (copies), objectives that differ only in sampling settings are scored on one trained
stack (samplers), and resume selects members and rows of that list."""

from benchbench import default_registry, parse_suite
from benchbench.plan.cells import plan, planned, share
from benchbench.plan.selection import remaining

NET = {"batch_size": 16, "hidden": [16]}
RAW = {
    "name": "jobs", "seeds": 3, "steps": 4,
    "datasets": {"ring": {}},
    "objectives": {"a": {"type": "flow", "sampling_steps": 4, **NET},
                   "b": {"type": "flow", "sampling_steps": 4, **NET},  # a's settings under another label
                   "c": {"type": "flow", "sampling_steps": 8, **NET},  # a's training, another sampler
                   "gmmn": NET},
    "metrics": ["modes"], "reporters": [],
    "execution": {"workers": 1},
}


def jobs(raw=RAW):
    suite = parse_suite(raw, default_registry(), source="s.yaml")
    return plan(suite, default_registry()), planned(suite, default_registry())


def labels(job):
    return job.label, tuple(spec.label for spec, _ in job.samplers)


def test_each_training_is_planned_once_with_its_copies_and_samplers():
    shared, separated = jobs()
    assert [labels(j) for j in shared] == [("ring/(data)", ()), ("ring/a", ("c",)), ("ring/gmmn", ())]
    flow = shared[1]
    assert [[c.objective for c in flow.rows(cell)] for cell in flow.cells] == [["a", "b"]] * 3
    written = sorted((c.objective, c.seed) for c in flow.written)
    assert written == sorted((o, s) for o in "abc" for s in (0, 1, 2))
    every = sorted(c.key for j in separated for c in j.cells)  # the planned cells, nothing lost or added
    assert sorted(c.key for j in shared for c in j.written) == every


def test_resume_selects_the_members_with_a_row_missing_and_keeps_the_rest():
    shared, _ = jobs()
    flow = shared[1]
    missing = {flow.copies[flow.cells[1].key][0].key}  # only b's seed 1
    todo, finished = remaining(shared, lambda cell: cell.key not in missing)
    assert [(labels(j), j.seeds) for j in todo] == [(("ring/a", ("c",)), (1,))]
    assert todo[0].key != flow.key and todo[0].written == tuple(r for r in flow.written if r.seed == 1)
    assert len(finished) == sum(len(j.written) for j in shared) - 1
    todo, finished = remaining(shared, lambda cell: True)
    assert not todo and sorted(c.key for c in finished) == sorted(c.key for j in shared for c in j.written)


def test_a_lower_rung_of_a_ladder_carries_its_copies():
    shared, _ = jobs({**{k: v for k, v in RAW.items() if k != "steps"}, "budget": {"steps": [2, 4]}})
    flow = shared[1].at_rung(0)
    assert {c.rung for c in flow.written} == {0}
    assert sorted(c.objective for c in flow.written) == sorted("abc" * 3)
    assert [flow.rows(c)[1].key for c in flow.cells] == [c.lower[0].key for c in
                                                         (shared[1].copies[t.key][0] for t in shared[1].cells)]


def test_sharing_is_idempotent():
    shared, _ = jobs()
    assert share(shared) == shared
