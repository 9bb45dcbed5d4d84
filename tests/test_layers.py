"""The library's shape, checked from its source: its packages form layers, each importing only layers
below it (or its own), with no import circle, and no module is over MAX_LINES lines.

Imports are read with ``ast`` from every module of ``latent_skills/``, wherever they are written (a
function's body counts: it runs when called); those under ``if TYPE_CHECKING:`` never run and do not
count. A name read from a lazy package (``from latent_skills.agents import LDCQ``) is an import of the
module that defines it, as the package's ``if TYPE_CHECKING:`` imports name it.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "latent_skills"

# Low to high: a module imports only from its own layer or lower ones. A layer is a list of the
# package's top-level modules and subpackages; "" is the package's own __init__ (__version__, the
# lazy public names), which everything may import.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_lazy", "_progress", "stats"),
    ("diffusion",),  # the maths, torch only; the solver registry, which configs read for their choices
    ("", "config", "checkpoint"),  # the package's names, configs, the format on disk
    ("envs",),  # safe env construction, evaluation protocols, SkillEnv, video (agents duck-typed)
    ("data",),  # Minari loading, windows, dataset makers
    ("plots",),  # figures of an agent, read through its public parts
    ("nn",),
    ("hub",),  # sharing over save/load, knowing nothing of agents
    ("agents",),
    ("loggers", "_wandb_writer", "recipes"),
    ("runs", "sweep", "zoo"),  # experiment flows over agents
    ("cli", "__main__"),  # the command: nothing below imports it
)
MAX_LINES = 400
# Modules over MAX_LINES today, with their size: this list may only shrink (an entry must be removed
# once its module is split, and none may grow). Do not add to it: split the module.
OVERSIZED = {
    "latent_skills/agents/base.py": 417,
    "latent_skills/data/makers/pointmaze.py": 421,
    "latent_skills/envs/safe_make.py": 442,
    "latent_skills/nn/skill_vae.py": 457,
    "latent_skills/sweep.py": 453,
}


# ------------------------------------------------------------------------------------ the graph
def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` under ``root``."""
    found = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, runtime_only: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of ``tree``, at any depth; with ``runtime_only`` not those under
    ``if TYPE_CHECKING:`` (their ``else:`` runs, and counts)."""
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child
        elif runtime_only and isinstance(child, ast.If) and _type_checking(child):
            for other in child.orelse:
                yield from _imports(ast.Module(body=[other], type_ignores=[]), runtime_only)
        else:
            yield from _imports(child, runtime_only)


class ImportGraph:
    """Which module of a package imports which, at run time."""

    def __init__(self, root: Path, package: str) -> None:
        self.files = module_files(root, package)
        self.package = package
        self._trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in self.files.items()}
        self._names: dict[str, dict[str, str]] = {}
        self.edges: dict[str, set[str]] = {name: set() for name in self.files}
        for name, tree in self._trees.items():
            for node in _imports(tree, runtime_only=True):
                for target in self._targets(name, node):
                    if target != name:
                        self.edges[name].add(target)

    def _is_package(self, name: str) -> bool:
        return self.files[name].name == "__init__.py"

    def _absolute(self, importer: str, node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = importer.split(".")
        if not self._is_package(importer):
            parts = parts[:-1]
        parts = parts[: len(parts) - (node.level - 1)]
        return ".".join(parts + ([node.module] if node.module else []))

    def _package_names(self, package: str) -> dict[str, str]:
        """Name -> the module a package's imports (type-only ones included: a lazy package names its
        public names' modules there) take it from."""
        if package not in self._names:
            names = {}
            for node in _imports(self._trees[package], runtime_only=False):
                if isinstance(node, ast.ImportFrom):
                    source = self._absolute(package, node)
                    for alias in node.names:
                        names[alias.asname or alias.name] = source
            self._names[package] = names
        return self._names[package]

    def _module_of(self, dotted: str) -> str | None:
        """The package's module that ``dotted`` (a module, or a name in one) denotes."""
        if not (dotted == self.package or dotted.startswith(self.package + ".")):
            return None
        if dotted in self.files:
            return dotted
        owner, _, name = dotted.rpartition(".")
        if owner in self.files and self._is_package(owner):
            source = self._package_names(owner).get(name)
            if source is not None and source != owner:
                return self._module_of(f"{source}.{name}") or self._module_of(source)
        return self._module_of(owner) if owner else None

    def _targets(self, importer: str, node: ast.Import | ast.ImportFrom) -> Iterator[str]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = self._module_of(alias.name)
                if target:
                    yield target
            return
        source = self._absolute(importer, node)
        for alias in node.names:
            target = self._module_of(f"{source}.{alias.name}")
            if target:
                yield target

    def circles(self) -> list[list[str]]:
        """The strongly connected components of more than one module (Tarjan's algorithm)."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        found: list[list[str]] = []
        counter = itertools.count()

        def visit(node: str) -> None:
            index[node] = low[node] = next(counter)
            stack.append(node)
            on_stack.add(node)
            for other in sorted(self.edges[node]):
                if other not in index:
                    visit(other)
                    low[node] = min(low[node], low[other])
                elif other in on_stack:
                    low[node] = min(low[node], index[other])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

        for node in sorted(self.edges):
            if node not in index:
                visit(node)
        return found


def top_level(module: str, package: str) -> str:
    """``latent_skills.agents.base`` -> ``agents``; the package itself -> ``""``."""
    return module[len(package) + 1 :].split(".")[0] if module != package else ""


def layer_of(module: str, package: str, layers: tuple[tuple[str, ...], ...]) -> int | None:
    if module.endswith(".__main__"):  # an entry point (`python -m ...`), not a library module
        return len(layers) - 1
    name = top_level(module, package)
    return next((rank for rank, members in enumerate(layers) if name in members), None)


def upward_imports(graph: ImportGraph, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    """Every import of a module from a higher layer than its own, as ``importer -> imported``."""
    wrong = []
    for importer, targets in sorted(graph.edges.items()):
        for target in sorted(targets):
            low, high = layer_of(importer, graph.package, layers), layer_of(target, graph.package, layers)
            if low is not None and high is not None and high > low:
                wrong.append(f"{importer} -> {target}")
    return wrong


def unplaced(graph: ImportGraph, layers: tuple[tuple[str, ...], ...]) -> list[str]:
    names = {top_level(module, graph.package) for module in graph.files}
    return sorted(
        name
        for name in names
        if layer_of(f"{graph.package}.{name}".rstrip("."), graph.package, layers) is None
    )


# ------------------------------------------------------------------------------------ the checks
@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    return ImportGraph(ROOT, PACKAGE)


def test_every_part_of_the_package_has_a_layer(graph):
    assert unplaced(graph, LAYERS) == [], "place new top-level modules in LAYERS (tests/test_layers.py)"


def test_no_import_circles(graph):
    assert graph.circles() == []


def test_imports_point_down_the_layers(graph):
    assert upward_imports(graph, LAYERS) == []


def test_no_library_module_is_over_the_line_limit():
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in module_files(ROOT, PACKAGE).values()
    }
    over = {name: n for name, n in sizes.items() if n > MAX_LINES and name not in OVERSIZED}
    assert over == {}, f"split these modules (at most {MAX_LINES} lines each)"
    grown = {name: sizes[name] for name, cap in OVERSIZED.items() if sizes.get(name, 0) > cap}
    assert grown == {}, "a module listed in OVERSIZED grew: split it instead"
    done = sorted(name for name in OVERSIZED if sizes.get(name, 0) <= MAX_LINES)
    assert done == [], "these are split (or gone): remove them from OVERSIZED in tests/test_layers.py"


# ------------------------------------------------------------------------------------ the check can fail
def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_check_finds_an_upward_import_and_a_circle(tmp_path):
    layers = (("", "low"), ("high",))
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low/__init__.py": (
                "from typing import TYPE_CHECKING\n"
                "from pkg._lazy import lazy\n"
                "if TYPE_CHECKING:\n    from .a import A\n"
            ),
            "pkg/low/a.py": "def f():\n    from pkg.high import H\n",  # a function's import counts
            "pkg/high/__init__.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .h import H\n",
            "pkg/high/h.py": "from pkg.low import A\n",  # through the lazy package, to pkg.low.a
            "pkg/_lazy.py": "",
            "pkg/typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high.h import H\n",
        },
    )
    graph = ImportGraph(tmp_path, "pkg")
    assert graph.edges["pkg.high.h"] == {"pkg.low.a"}
    assert graph.edges["pkg.typed"] == set()  # type-only imports do not count
    assert graph.circles() == [["pkg.high.h", "pkg.low.a"]]
    assert upward_imports(graph, layers) == ["pkg.low.a -> pkg.high.h"]
    assert unplaced(graph, layers) == ["_lazy", "typed"]
