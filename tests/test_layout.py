"""The package's shape: no import cycle, small modules, few top-level modules, no corpus names in code."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from assistant.settings import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "assistant"
MAX_LINES = 700
MAX_TOP_LEVEL_MODULES = 10


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT_ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, known: set[str], *, lazy: bool) -> set[str]:
    """The project modules `path` imports; `lazy` adds those imported inside functions.

    Imports under `if TYPE_CHECKING:` never run, so they cannot form a cycle.
    """
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not lazy:
            return
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        found.update(n for n in names if n in known)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text("utf-8")))
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)) is not None:
            return found
    return None


def _package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's `__init__` is imported by its submodules' importers: drop those edges."""
    return {
        module: {t for t in targets if not module.startswith(t + ".")} for module, targets in graph.items()
    }


def test_the_import_graph_has_no_cycle() -> None:
    modules = _modules()
    known = set(modules)
    graph = _package_edges({m: _imports(p, known, lazy=True) - {m} for m, p in modules.items()})
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_module_level_imports_have_no_cycle_either() -> None:
    modules = _modules()
    known = set(modules)
    graph = _package_edges({m: _imports(p, known, lazy=False) - {m} for m, p in modules.items()})
    assert _cycle(graph) is None, " → ".join(_cycle(graph) or [])


def test_modules_are_small_and_few_sit_at_the_top() -> None:
    too_long = {
        m: n for m, p in _modules().items() if (n := len(p.read_text("utf-8").splitlines())) > MAX_LINES
    }
    assert not too_long, too_long
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(top) <= MAX_TOP_LEVEL_MODULES, top


def _corpus_names() -> set[str]:
    """Names of centers, countries, regions and cities from the corpus's data files."""
    names: set[str] = set()

    def walk(value: object, key: str = "") -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if k != "home":  # the country the whole product is about is no corpus detail
                    walk(v, str(k))
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif (
            isinstance(value, str)
            and key in {"name", "name_en", "name_zh", "en", "zh", "zh_hant", "names", "aliases"}
            # Proper names: three or more Han characters, or a capitalised English name;
            # generic words of the data files ("worldwide") are not names.
            and ((len(value) >= 3 and not value.isascii()) or (len(value) >= 5 and value[0].isupper()))
        ):
            names.add(value)

    for file in ("centers.yaml", "places.yaml"):
        path = PROJECT_ROOT / "corpus" / file
        if path.exists():
            walk(yaml.safe_load(path.read_text("utf-8")))
    return names


def test_no_module_names_a_center_or_place_of_the_corpus() -> None:
    names = _corpus_names()
    assert len(names) > 20  # the data files were read
    offenders = {}
    for module, path in _modules().items():
        text = path.read_text("utf-8")
        hits = sorted(n for n in names if n in text)
        if hits:
            offenders[module] = hits[:5]
    assert not offenders, offenders


def test_nothing_reads_the_shared_folder() -> None:
    for path in [*PACKAGE.rglob("*.py"), *(PROJECT_ROOT / "tests").rglob("*.py")]:
        if path.resolve() == Path(__file__).resolve():
            continue
        text = path.read_text("utf-8")
        assert '"shared"' not in text and "/shared/" not in text, path
