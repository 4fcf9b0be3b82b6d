"""Layering of the package, read from its import statements (ast, nothing imported): no import circle between
its modules, and the model and the maps built on the edge table, not on the forward model that draws spectra."""

from __future__ import annotations

import ast
from pathlib import Path

import eelsbatch

ROOT = Path(eelsbatch.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _under_type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imports(name: str) -> set[str]:
    """The eelsbatch modules that module ``name`` imports anywhere (top level and inside functions; not under
    ``TYPE_CHECKING``): for ``from package import name`` the submodule where ``name`` is one, else the package."""
    path = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if _under_type_checking(node, parents):
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], *filter(None, [node.module])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {module for module in found if module in MODULES and module != name}


def test_there_is_no_import_circle_between_the_modules() -> None:
    graph = {name: imports(name) for name in MODULES}
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join([*path[path.index(name):], name]))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


def test_the_model_and_the_maps_import_nothing_of_the_forward_model() -> None:
    offending = {name: sorted(module for module in imports(name) if module.split(".")[:2] == ["eelsbatch", "synth"])
                 for name in MODULES if name.split(".")[:2] in (["eelsbatch", "model"], ["eelsbatch", "mapping"])}
    assert len(offending) >= 10, "the model and mapping modules were not found"
    assert not {name: found for name, found in offending.items() if found}


def test_what_the_model_and_maps_need_of_the_edges_is_in_edges() -> None:
    from eelsbatch.edges import ROSE_SNR, TWIN_MARGIN_EV, twin_counts, window_twins  # noqa: F401

    assert not (ROOT / "synth" / "_twins.py").exists() and not (ROOT / "slurm.py").exists()
    assert {"eelsbatch.cluster._options", "eelsbatch.cluster._local", "eelsbatch.cluster._slurm"} <= set(MODULES)
