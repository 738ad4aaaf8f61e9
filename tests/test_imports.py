"""Imports run one way: no module of the three packages imports (at module level or inside a function) a module
that imports it back, directly or through others.

The graph is read from the source with ``ast``, not by importing: every ``import`` and ``from ... import`` in a
module counts, wherever it sits (module level, a function, ``if TYPE_CHECKING:``), relative imports resolved.
``from package import name`` is an edge to the submodule ``package.name`` when there is one, else to the package
(its ``__init__``). The implicit import of a parent package (``import a.b`` runs ``a/__init__`` first) is not an
edge: every module of a package would otherwise form a cycle with an ``__init__`` that re-exports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: import name -> source folder (pyproject.toml's package-dir)
PACKAGES = {
    "gentool_router": ROOT / "gentool_router",
    "gentool_router_train": ROOT / "train",
    "gentool_router_quantize": ROOT / "quantize",
}


def module_files(packages: dict[str, Path]) -> dict[str, Path]:
    """Every module of ``packages``: dotted name -> file (a package's ``__init__.py`` under the package's name)."""
    modules = {}
    for package, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(name: str, known: set[str]) -> str | None:
    """The longest prefix of dotted ``name`` that is a known module (``a.b.func`` -> ``a.b``), or None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def imported_modules(module: str, path: Path, known: set[str]) -> set[str]:
    """The known modules that ``module`` (source file ``path``) imports anywhere in its code."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    # the package a relative import starts from: the module itself for an __init__, else its parent
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level - 1 >= len(base_parts):
                    raise ValueError(f"{path}:{node.lineno}: relative import beyond the top-level package")
                base = ".".join(base_parts[: len(base_parts) - (node.level - 1)])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            # `from pkg import sub` imports the submodule pkg.sub when there is one, else a name of pkg
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            resolved = _resolve(target, known)
            if resolved is not None and resolved != module:
                found.add(resolved)
    return found


def import_graph(packages: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules of ``packages`` it imports."""
    modules = module_files(packages)
    known = set(modules)
    return {name: imported_modules(name, path, known) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that ends where it starts (``[a, b, a]``), or None when there is none."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = [start]  # the chain of modules being explored, each with its unexplored imports
        stack = [iter(sorted(graph.get(start, ())))]
        on_path = {start}
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                node = path.pop()
                on_path.discard(node)
                done.add(node)
                continue
            if child in on_path:
                return path[path.index(child):] + [child]
            if child not in done:
                path.append(child)
                on_path.add(child)
                stack.append(iter(sorted(graph.get(child, ()))))
    return None


def test_find_cycle_finds_a_cycle_and_only_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}) is None  # a diamond is no cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y"}}) == ["y", "y"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"d"}, "d": {"c"}}) == ["c", "d", "c"]


def test_the_graph_sees_function_level_and_relative_imports(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("from .a import A\n")
    (package / "a.py").write_text("A = 1\n\ndef as_b():\n    from .sub import b\n    return b\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("import json\nfrom ..a import A\nfrom .. import a\n")
    graph = import_graph({"pkg": package})
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.sub.b"}, "pkg.sub": set(), "pkg.sub.b": {"pkg.a"}}
    assert find_cycle(graph) == ["pkg.a", "pkg.sub.b", "pkg.a"]


def test_imports_between_packages_count(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "tool").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("")
    (tmp_path / "lib" / "cli.py").write_text("def run():\n    import tool.train\n")
    (tmp_path / "tool" / "__init__.py").write_text("")
    (tmp_path / "tool" / "train.py").write_text("from lib.cli import run\n")
    graph = import_graph({"lib": tmp_path / "lib", "tool": tmp_path / "tool"})
    assert find_cycle(graph) == ["lib.cli", "tool.train", "lib.cli"]


def test_the_packages_import_one_way():
    graph = import_graph(PACKAGES)
    assert "gentool_router.router" in graph and "gentool_router_train.trainer" in graph  # the packages were read
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("package", ["gentool_router_train", "gentool_router_quantize"])
def test_only_the_cli_knows_the_products(package):
    """The library does not import training or export, except its command line (the one place that knows all)."""
    graph = import_graph(PACKAGES)
    users = sorted(m for m, targets in graph.items() if m.partition(".")[0] == "gentool_router"
                   and any(t == package or t.startswith(package + ".") for t in targets))
    assert all(u == "gentool_router.cli" or u.startswith("gentool_router.cli.") for u in users), users
    assert users  # the CLI does use them: the check looks where it should


def test_every_subpackage_is_in_the_wheel():
    """pyproject.toml lists packages by hand: a new subpackage left out installs from source but not from a wheel."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join([package, *init.parent.relative_to(folder).parts])
             for package, folder in PACKAGES.items() for init in folder.rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)
