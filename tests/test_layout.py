"""The documents/ layout holds: packages by aggregate, imports through public surfaces, no cycles, one home per name."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = ROOT / "documents"
PRODUCTION = ["server.py", "core", "handlers", "jobs", "documents", "rustore", "generation", "oauth"]
PACKAGES = sorted(p.name for p in DOCUMENTS.iterdir() if (p / "__init__.py").exists())


def _sources() -> list[Path]:
    found: list[Path] = []
    for entry in PRODUCTION:
        path = ROOT / entry
        found += [path] if path.is_file() else sorted(path.rglob("*.py"))
    return [p for p in found if "emulator" not in p.parts or p.suffix == ".py"]


def _package_of(path: Path) -> str | None:
    rel = path.relative_to(ROOT).parts
    return rel[1] if rel[0] == "documents" and len(rel) > 2 else None


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names]
    return out


def _surface(package: str) -> set[str]:
    """The names a package's __init__ lists in __all__."""
    for node in ast.parse((DOCUMENTS / package / "__init__.py").read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return {elt.value for elt in node.value.elts}
    return set()


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for path in DOCUMENTS.glob("*/*.py"):
        here = _package_of(path)
        for _, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "documents":
                continue
            targets = [parts[1]] if len(parts) > 1 else [n for n in names if n in PACKAGES]
            graph[here] |= {t for t in targets if t != here}
    return graph


def test_only_a_package_itself_imports_its_inner_modules():
    leaks = []
    for path in _sources():
        here = _package_of(path)
        for line, module, names in _imports(path):
            parts = module.split(".")
            if parts[0] != "documents" or len(parts) == 1:
                continue  # `from documents import <package>` is the public surface itself
            surface = _surface(parts[1]) if len(parts) == 2 else set()
            inner = len(parts) > 2 or any((DOCUMENTS / parts[1] / f"{n}.py").exists() and n not in surface for n in names)
            if inner and parts[1] != here:
                leaks.append(f"{path.relative_to(ROOT)}:{line} imports {module} {names}")
    assert leaks == []


def test_no_package_imports_documents_root_modules_that_no_longer_exist():
    assert sorted(p.name for p in DOCUMENTS.glob("*.py")) == ["__init__.py"]  # every module lives in a package


def test_packages_form_no_cycle_and_the_wallet_knows_nothing_of_purchases():
    graph = _package_graph()

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert [p for p in PACKAGES if p in reach(p)] == []
    assert reach("common") == set()
    assert reach("wallet") <= {"common", "events"}
    assert "purchases" not in reach("subscriptions") and "subscriptions" not in reach("purchases")


def test_every_documents_module_and_package_says_what_it_holds():
    missing = [str(p.relative_to(ROOT)) for p in sorted(DOCUMENTS.rglob("*.py"))
               if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_each_collection_name_has_one_home():
    homes = defaultdict(list)
    for path in DOCUMENTS.rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == "COLLECTION":
                        homes[node.value.value].append(str(path.relative_to(ROOT)))
    assert {name: paths for name, paths in homes.items() if len(paths) > 1} == {}
