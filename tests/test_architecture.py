"""The import contract: every module imports only from its own layer or the layers below it.

Layers, from the bottom (README, "Architecture"): the foundation (checks, registry); the building
blocks; the fast paths; the engine; the tools on a model; the sweeps; the studies; and the
interfaces at the top (the command line, the explorer, the scikit-learn estimator, the package's
own __init__). Imports inside functions count too: a lazy import upward is still a dependency.
"""

import ast
import pathlib

import pytest

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "src" / "initlab"

LAYERS = [
    (
        "foundation",
        {
            "initlab.checks",
            "initlab.registry",
            "initlab.version",
            "initlab.environment",
            "initlab.interrupts",
        },
    ),
    ("blocks", {"initlab.blocks"}),
    ("fast", {"initlab.fast"}),
    ("engine", {"initlab.engine"}),
    ("tools", {"initlab.tools"}),
    ("sweeps", {"initlab.sweeps"}),
    ("studies", {"initlab.studies"}),
    ("interfaces", {"initlab", "initlab.cli", "initlab.serve", "initlab.estimator"}),
]


def _module_name(path):
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _rank(module):
    """The index in LAYERS of the most specific prefix that names `module`."""
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > best[1]:
                    best = (rank, len(prefix))
    return best[0]


def _imports(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            for alias in node.names:
                # `from initlab.blocks import activations` imports a module of that package.
                yield f"{base}.{alias.name}" if base in _packages() else base


def _packages():
    return {_module_name(p.parent / "__init__.py") for p in SOURCE.rglob("__init__.py")}


MODULES = sorted(SOURCE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_module_imports_a_layer_above_its_own(path):
    module = _module_name(path)
    own = _rank(module)
    upward = [name for name in _imports(path) if name.startswith("initlab") and _rank(name) > own]
    assert not upward, (
        f"{module} ({LAYERS[own][0]}) imports {upward}, which sit above it; "
        f"lower layers never import higher ones"
    )


def test_there_is_no_import_cycle_between_modules():
    graph = {}
    for path in MODULES:
        module = _module_name(path)
        graph[module] = {
            name for name in _imports(path) if name.startswith("initlab.") and name != module
        }
    known = set(graph)

    def resolve(name):  # `initlab.blocks.activations.ReLU` -> the module it lives in
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name

    edges = {m: {resolve(n) for n in names} - {"", m, "initlab"} for m, names in graph.items()}
    state = {}

    def visit(module, trail):
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join(trail + [module])}"
        state[module] = "open"
        for other in sorted(edges.get(module, ())):
            visit(other, trail + [module])
        state[module] = "done"

    for module in sorted(edges):
        visit(module, [])


def test_the_contract_knows_every_module():
    for path in MODULES:
        assert _rank(_module_name(path)) is not None
