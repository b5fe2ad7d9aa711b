"""The import contract: the package is layered, data flows down, and nothing imports in a circle.

Every module belongs to one layer (the most specific prefix in LAYERS). An import, at the top of a module
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
    ("core", ("streamo_data", "errors", "schema", "align", "reasons", "moments", "text_keys")),
    ("store", ("storage", "io", "tables", "outputs", "workdir", "manifest", "schema_export")),
    ("video | runtime", ("video", "frames.timing", "frames.thumbnails", "pipelines.runner", "pipelines.local_ray")),
    ("formats", ("reference_format", "raw_records")),
    ("sources", ("recipes", "annotators", "sample_data", "sample_sources")),
    ("corpus", ("tasks", "split", "fidelity")),
    ("reference", ("reference_rules", "reference_convert", "audit")),
    ("stages", ("pipelines.stages", "pipelines.annotate")),
    ("plots", ("plots",)),
    ("release", ("release", "card", "stats", "validate")),
    ("pipelines", ("pipelines.mixture", "pipelines.demo")),
    ("exports | train", ("convert", "export_raw", "frames", "train")),
    ("cli", ("cli",)),
]


# Folders whose modules sit in different layers: their __init__ holds no code and imports nothing, so
# importing any of their modules loads nothing else (a test holds them to it).
MIXED_PACKAGES = ("streamo_data.pipelines", "streamo_data.frames")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ROOT.rglob("*.py")}


def layer_of(module: str) -> int:
    """The index in LAYERS of the most specific prefix naming ``module``."""
    if module in MIXED_PACKAGES:
        return 0
    best, length = -1, -1
    short = module.removeprefix("streamo_data.") if module != "streamo_data" else module
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (short == prefix or short.startswith(prefix + ".")) and len(prefix) > length:
                best, length = index, len(prefix)
    assert best >= 0, f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}"
    return best


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


def test_mixed_packages_import_nothing() -> None:
    for package in MIXED_PACKAGES:
        assert GRAPH[package] == [], package


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
    assert layer_of("streamo_data.cli.common") > layer_of("streamo_data.schema")
    GRAPH["streamo_data.errors"].append("streamo_data.cli.common")
    try:
        assert find_cycle() is not None
    finally:
        GRAPH["streamo_data.errors"].remove("streamo_data.cli.common")
