"""The layers of docs/architecture.md: each subpackage imports only the layers before it, no module
imports itself through a cycle, and the facade stays short and sorted."""

import ast
import re
from pathlib import Path

import benchbench

PACKAGE = Path(benchbench.__file__).parent
LAYERS = ["api", "stats", "registry", "config", "nets", "plan", "train", "rundir", "engines", "report", "testing"]
TOP = {"runner", "cli", "__init__", "__main__"}  # the top: may import every layer


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Modules of benchbench that ``path`` imports (relative or absolute, at any depth)."""
    here = module_name(path).split(".") if module_name(path) else []
    package = here if path.name == "__init__.py" else here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
            elif node.module and node.module.split(".")[0] == "benchbench":
                target = node.module.split(".")[1:]
            else:
                continue
            for alias in node.names:  # `from . import x`: x may be a module
                candidate = [*target, alias.name]
                as_module = PACKAGE.joinpath(*candidate).with_suffix(".py")
                found.add(".".join(candidate if as_module.is_file() or PACKAGE.joinpath(*candidate).is_dir()
                                   else target))
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".", 1)[1] for a in node.names if a.name.startswith("benchbench.")}
    return {f for f in found if f}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    return module.split(".")[0]


def test_every_subpackage_is_a_documented_layer():
    subpackages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert subpackages == set(LAYERS)
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    assert all(f"`{name}/`" in text for name in LAYERS)


def test_layers_import_only_the_layers_before_them():
    wrong = []
    for module, imported in graph().items():
        if layer(module) in TOP or module == "":
            continue
        rank = LAYERS.index(layer(module))
        for target in imported:
            if layer(target) in TOP or (layer(target) in LAYERS and LAYERS.index(layer(target)) > rank):
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_no_module_imports_itself_through_a_cycle():
    modules = graph()
    edges = {m: sorted(t for t in targets if t in modules) for m, targets in modules.items()}
    done: set[str] = set()
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in edges[node]:
            if nxt in path:
                cycles.append(" -> ".join([*path[path.index(nxt):], nxt]))
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    for node in edges:
        if node not in done:
            visit(node, [node])
    assert not cycles, cycles


def test_the_facade_is_sorted_and_holds_only_what_users_and_plugins_use():
    names = benchbench.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n.lower()))
    assert all(hasattr(benchbench, n) for n in names)
    root = PACKAGE.parent
    outside = "\n".join(p.read_text() for folder in ("plugins", "examples", "docs", "tests", "benchmarks")
                        for p in (root / folder).rglob("*") if p.suffix in (".py", ".md"))
    outside += (root / "README.md").read_text()
    unused = [n for n in names if not re.search(rf"\b{n}\b", outside)]
    assert not unused, f"exported but used by no plugin, example, doc or test: {unused}"


# ---- the rules of docs/architecture.md ("Rules the tests hold") ----------------------------------------------

def trees() -> dict[str, ast.AST]:
    return {module_name(p): ast.parse(p.read_text()) for p in PACKAGE.rglob("*.py")}


def called(tree: ast.AST) -> set[str]:
    """Names of the functions and methods ``tree`` calls (``f(...)``, ``x.f(...)``)."""
    return {node.func.id if isinstance(node.func, ast.Name) else node.func.attr for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute))}


def test_the_core_never_imports_a_plugin():
    found = [f"{module} imports {alias.name if isinstance(node, ast.Import) else node.module}"
             for module, tree in trees().items() for node in ast.walk(tree)
             if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and not node.level)
             for alias in node.names
             if (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
             in ("benchbench_plugins", "plugins")]
    assert not found, found


def test_reports_read_records_and_the_registry_never_the_trainer_or_an_engine():
    wrong = [f"{module} imports {target}" for module, imported in graph().items() if layer(module) == "report"
             for target in imported if target == "train.trainer" or layer(target) in ("engines", *TOP)]
    assert not wrong, wrong


def test_jobs_are_made_in_plan_only():
    """The runner and the engines select from the planned list; the test kit makes the one job it runs."""
    makers = {"make_job", "separate", "share", "planned"}
    wrong = [f"{module} calls {name}" for module, tree in trees().items() if layer(module) not in ("plan", "testing")
             for name in called(tree) & makers]
    assert not wrong, wrong


def test_networks_are_built_in_nets_from_what_objectives_declare():
    wrong = [f"{module} imports {alias.name} from {node.module}" for module, tree in trees().items()
             if layer(module) != "nets" for node in ast.walk(tree)
             if isinstance(node, ast.ImportFrom) and node.module and "nets" in node.module.split(".")
             for alias in node.names if alias.name not in ("build_network", "build_declared")]
    assert not wrong, wrong


def test_components_are_built_from_registry_entries_in_one_place():
    """``registry.get(...).cls(...)`` only in Registry.build and plan/build.py (an objective, on its data)."""
    def builds(tree: ast.AST) -> bool:
        return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "cls"
                   and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Attribute)
                   and node.func.value.func.attr in ("get", "entry") for node in ast.walk(tree))
    wrong = sorted(module for module, tree in trees().items() if builds(tree)
                   and module not in {"registry.components", "plan.build"})
    assert not wrong, wrong
