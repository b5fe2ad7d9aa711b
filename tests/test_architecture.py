"""The import contract: the package is layered, data flows down, and nothing imports in a circle.

Each folder of the package is a layer, and every module belongs to the layer of its top folder (LAYERS,
bottom to top; the package's own ``__init__`` holds the version and sits in core). An import, at the top of a module
or deferred inside a function (a deferred import is still a dependency, only hidden), may only name a
module of its own layer or of one below it, and the graph of imports between our modules has no cycle.
A new module joins a layer here before it lands; the README's layout section tells the same story.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "streamo_data"

# Bottom to top. Siblings in one layer may import each other (never in a circle).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("core",)),
    ("store", ("store",)),
    ("video | runtime", ("video", "runtime")),
    ("formats", ("formats",)),
    ("sources", ("sources",)),
    ("corpus", ("corpus",)),
    ("reference", ("reference",)),
    ("stages", ("stages",)),
    ("plots", ("plots",)),
    ("release", ("release",)),
    ("pipelines", ("pipelines",)),
    ("exports | train", ("exports", "train")),
    ("benchmarks", ("benchmarks",)),
    ("cli", ("cli",)),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def layer_of(module: str) -> int:
    """The index in LAYERS of the layer whose folder holds ``module``."""
    if module == "streamo_data":
        return 0
    folder = module.split(".")[1]
    for index, (_, folders) in enumerate(LAYERS):
        if folder in folders:
            return index
    raise AssertionError(f"{module} is in no layer's folder: move it into one, or add its folder to LAYERS in "
                         f"{Path(__file__).name} (and to the README's layout table)")


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """Our modules that ``module`` imports, with the line."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name in MODULES and name != module:
                yield name, node.lineno


GRAPH = {module: sorted({target for target, _ in imports_of(module)}) for module in MODULES}


def test_every_module_has_a_layer() -> None:
    for module in MODULES:
        layer_of(module)


def test_every_module_is_in_a_layer_folder() -> None:
    loose = sorted(module for module in MODULES if module.count(".") == 1 and MODULES[module].name != "__init__.py")
    assert not loose, f"modules outside every layer folder: {loose}"


def test_a_layer_package_imports_nothing() -> None:
    """Importing one module of a layer loads that module and what it imports, not the whole layer."""
    heavy = [folder for _, folders in LAYERS for folder in folders
             if folder != "cli" and GRAPH.get(f"streamo_data.{folder}")]
    assert not heavy, f"layer packages whose __init__ imports our modules: {heavy}"


def test_imports_only_go_down() -> None:
    upward = [f"{module}:{line} imports {target} ({LAYERS[layer_of(module)][0]} -> {LAYERS[layer_of(target)][0]})"
              for module in MODULES for target, line in imports_of(module) if layer_of(target) > layer_of(module)]
    assert not upward, "imports that go up a layer:\n" + "\n".join(sorted(upward))


def find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in GRAPH[module]:
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(MODULES):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    cycle = find_cycle()
    assert cycle is None, "an import cycle: " + " -> ".join(cycle or [])


def test_the_contract_sees_a_violation() -> None:
    """The checks are not vacuous: an upward edge and a cycle are found when planted."""
    assert layer_of("streamo_data.cli.common") > layer_of("streamo_data.core.schema")
    GRAPH["streamo_data.core.errors"].append("streamo_data.cli.common")
    try:
        assert find_cycle() is not None
    finally:
        GRAPH["streamo_data.core.errors"].remove("streamo_data.cli.common")
