"""pgtorchrl's layers import only downward, and imports hide inside functions only where start-up
pays for it. The graph is built from the source (every ``import``/``from ... import`` anywhere in
a module, function bodies included; ``if TYPE_CHECKING:`` blocks excluded), not from what
happens to be imported at run time."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pgtorchrl"

LAYERS = (
    ("pgtorchrl.config", "configuration primitives: registries, shared field types, reading a spec file, overrides"),
    ("pgtorchrl.envs", "environments, their transforms, their state for checkpoints, and their catalog"),
    ("pgtorchrl.modules", "actors and critics (TensorDict modules) and their catalog"),
    ("pgtorchrl.objectives", "losses, advantage estimators, trust-region optimizers and their catalog"),
    ("pgtorchrl.collectors", "batches from envs (native, episodes, Ray) and their catalog"),
    ("pgtorchrl.components", "every registry a spec draws from, by section"),
    ("pgtorchrl.pipeline", "a spec: its schema, cross-section rules, messages, parsing, contracts, built pipeline"),
    ("pgtorchrl.record", "MLflow tracking (the writer process), plots, videos, store locks"),
    ("pgtorchrl.trainers", "the training loop, evaluation, checkpoints, per-step updates"),
    ("pgtorchrl.experiments", "many runs and trained runs: sweeps, studies, worker pools, Ray, loading a run"),
    ("pgtorchrl.deploy", "trained policies as deployable models: numpy in and out, the MLflow Model"),
    ("pgtorchrl.cli", "the command line: one prelude, one subcommand each"),
    ("pgtorchrl.__main__", "python -m pgtorchrl"),
)
"""The layers, bottom to top, each with its one job: a module imports only from its own layer
and the layers below. ``pgtorchrl/__init__.py`` names its exports as strings (lazy attributes)."""

TORCH_FREE = ("pgtorchrl.config",)
"""Layers that must not import torch or its libraries at all: the spec is read and validated
before the command line imports torch."""

DEFERRED = {
    "torch": "1.2 s to import",
    "torchrl": "2.2 s with torch and tensordict",
    "tensordict": "2.2 s with torch",
    "mlflow": "1.3 s; the trainer's MLflow lives in the writer process (record/mlflow_writer.py)",
    "matplotlib": "0.4 s; only the plotting functions need it",
    "imageio": "0.1 s; only --video needs it",
    "ray": "an optional extra (.[ray]), imported when a spec asks for it",
    "optuna": "an optional extra (.[tune]), imported when a spec asks for it",
    "ale_py": "an optional extra (.[atari]), imported when a spec or a checkpoint names an Atari game",
}
"""The libraries an import inside a function may name, each with its reason (import costs measured
with ``python -c "import X"`` on this 2-core machine). The command line validates a spec and starts
the MLflow writer before it imports torch; ``pgtorchrl list`` and ``--help`` import neither. Any
other import belongs at the top of its module, where readers see it. A function may also import a
pgtorchrl module that imports one of these at its top."""


def module_name(path: Path) -> str:
    parts = ["pgtorchrl", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    return skip


def _function_nodes(tree: ast.AST) -> set[int]:
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(n) for n in ast.walk(node) if n is not node)
    return inside


def imports(path: Path, modules: set[str]) -> list[tuple[str, bool, int]]:
    """``(imported module, inside a function, line)`` for every import of ``path``: pgtorchrl's
    own resolved to the module that defines the name, others as their top-level package."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    skip, inside = _type_checking_nodes(tree), _function_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skip or not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                up = package.split(".")
                base = ".".join(up[: len(up) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        for target in targets:
            if target.split(".")[0] == "pgtorchrl":
                while target and target not in modules:  # pgtorchrl.a.b.name -> the module pgtorchrl.a.b
                    target = target.rpartition(".")[0]
                if not target or target == name or target == "pgtorchrl":
                    continue
            else:
                target = target.split(".")[0]
            found.append((target, id(node) in inside, node.lineno))
    return found


def import_graph() -> dict[str, list[tuple[str, bool, int]]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports(path, set(paths)) for name, path in paths.items()}


def layer_of(module: str) -> int | None:
    """The index in :data:`LAYERS` of the layer ``module`` belongs to (``None``: the package's ``__init__``)."""
    for i, (layer, _) in enumerate(LAYERS):
        if module == layer or module.startswith(layer + "."):
            return i
    return None


def upward_imports(graph) -> list[str]:
    """Every import that climbs the layer order, as ``module:line -> imported (its layer)``."""
    climbs = []
    for module, found in graph.items():
        here = layer_of(module)
        for target, _, line in found:
            there = layer_of(target) if target.startswith("pgtorchrl.") else None
            if here is not None and there is not None and there > here:
                climbs.append(f"{module}:{line} -> {target} ({LAYERS[there][0]} is above {LAYERS[here][0]})")
    return climbs


def heavy_at_top(graph) -> set[str]:
    """pgtorchrl's modules that import a :data:`DEFERRED` library at their top, themselves or
    through pgtorchrl modules they import at their top."""
    heavy = {m for m, found in graph.items() if any(t in DEFERRED and not f for t, f, _ in found)}
    while True:
        more = {m for m, found in graph.items() if m not in heavy and any(t in heavy and not f for t, f, _ in found)}
        if not more:
            return heavy
        heavy |= more


ENTRY_POINT = "pgtorchrl.__main__"
"""The command line's entry point imports the command line inside the function that catches
Ctrl-C: an interrupt during those imports is its one line and exit 130, not a traceback."""


def unjustified_function_imports(graph) -> list[str]:
    """Imports inside functions that start-up does not pay for: neither a :data:`DEFERRED`
    library nor a pgtorchrl module that imports one at its top (the :data:`ENTRY_POINT` aside)."""
    heavy = heavy_at_top(graph)
    return [
        f"{module}:{line} imports {target} inside a function"
        for module, found in graph.items()
        if module != ENTRY_POINT
        for target, inside, line in found
        if inside and target not in DEFERRED and target not in heavy
    ]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


@pytest.fixture(scope="module")
def graph():
    return import_graph()


def test_every_module_belongs_to_a_layer(graph):
    assert [m for m in graph if m != "pgtorchrl" and layer_of(m) is None] == []


def test_every_import_goes_down_the_layer_order(graph):
    assert upward_imports(graph) == []


def test_the_configuration_layer_imports_no_torch(graph):
    torch_libs = {"torch", "torchrl", "tensordict"}
    heavy = heavy_at_top(graph)
    found = [
        f"{m}:{line} imports {t}"
        for m, imported in graph.items()
        if layer_of(m) is not None and LAYERS[layer_of(m)][0] in TORCH_FREE
        for t, _, line in imported
        if t in torch_libs or (t.startswith("pgtorchrl.") and t in heavy)
    ]
    assert found == []


def test_imports_inside_functions_are_only_the_deferred_ones(graph):
    assert unjustified_function_imports(graph) == []


def test_the_package_has_no_import_cycle(graph):
    own = {m: {t for t, _, _ in found if t.startswith("pgtorchrl.")} for m, found in graph.items()}
    cycle = find_cycle(own)
    assert cycle is None, " -> ".join(cycle)


def test_the_checks_find_what_they_look_for():
    """Each check fails on a graph that breaks its rule (an import that climbs, a stdlib import
    inside a function, a cycle), and passes the same graph without it."""
    climbing = {"pgtorchrl.envs.gym": [("pgtorchrl.trainers.trainer", True, 3)], "pgtorchrl.trainers.trainer": []}
    assert upward_imports(climbing) == [
        "pgtorchrl.envs.gym:3 -> pgtorchrl.trainers.trainer (pgtorchrl.trainers is above pgtorchrl.envs)"
    ]
    assert (
        upward_imports({"pgtorchrl.trainers.trainer": [("pgtorchrl.envs.gym", False, 3)], "pgtorchrl.envs.gym": []})
        == []
    )
    lazy = {
        "pgtorchrl.cli": [("json", True, 7), ("torch", True, 8), ("pgtorchrl.envs.gym", True, 9)],
        "pgtorchrl.envs.gym": [("torch", False, 1)],
    }
    assert unjustified_function_imports(lazy) == ["pgtorchrl.cli:7 imports json inside a function"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
