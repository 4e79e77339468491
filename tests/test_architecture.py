"""The import graph of the source tree, read with ``ast`` (imports inside functions included).

Layers, lowest first: ``config`` < {``rag``, ``memory``, ``channels``} < ``agent`` <
{``workers``, ``escalation``} < ``supportlah``; ``migrations`` sits beside the top but is not the
composition root. An import never goes to a higher floor. Packages on one floor may use each other
(memory stores ``channels.messages`` and counts tokens with ``rag.tokens``; escalation plugs hooks
into ``workers``) as long as the packages of that floor form no cycle, so each floor still has an
order. Only ``supportlah/`` imports ``supportlah``. Modules import each other without cycles at
module level (imports under ``if TYPE_CHECKING:`` do not run and are left out).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"config": 0, "rag": 1, "memory": 1, "channels": 1, "agent": 2, "workers": 3, "escalation": 3,
          "supportlah": 4, "migrations": 4}


def _modules() -> dict[str, Path]:
    found = {}
    for package in FLOORS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(module: str, path: Path, *, module_level_only: bool) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the file; relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[str, int]] = []

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                out.extend((alias.name, node.lineno) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join([*base, node.module] if node.module else base)
                else:
                    target = node.module or ""
                out.append((target, node.lineno))
                for alias in node.names:  # ``from pkg import module``
                    if f"{target}.{alias.name}" in MODULES:
                        out.append((f"{target}.{alias.name}", node.lineno))
            elif module_level_only:
                if isinstance(node, ast.If) and not _is_type_checking(node):
                    visit(node.body)
                    visit(node.orelse)
                elif isinstance(node, ast.Try):
                    visit(node.body)
                    for handler in node.handlers:
                        visit(handler.body)
                    visit(node.orelse)
                    visit(node.finalbody)
            else:
                visit([child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt)])

    visit(tree.body)
    return out


def _all_imports() -> list[tuple[str, str, int]]:
    return [(module, target, line) for module, path in MODULES.items()
            for target, line in _imports(module, path, module_level_only=False)]


def test_only_supportlah_imports_supportlah() -> None:
    wrong = [f"{module}:{line} imports {target}" for module, target, line in _all_imports()
             if target.split(".")[0] == "supportlah" and module.split(".")[0] != "supportlah"]
    assert not wrong, "only supportlah/ composes:\n" + "\n".join(wrong)


def test_imports_never_go_up_a_floor() -> None:
    wrong = []
    for module, target, line in _all_imports():
        source, dest = module.split(".")[0], target.split(".")[0]
        if dest in FLOORS and FLOORS[dest] > FLOORS[source]:
            wrong.append(f"{module}:{line} imports {target} ({source} is below {dest})")
    assert not wrong, "an import goes up a layer:\n" + "\n".join(wrong)


def test_packages_on_one_floor_form_no_cycle() -> None:
    edges: dict[str, set[str]] = {}
    for module, target, _line in _all_imports():
        source, dest = module.split(".")[0], target.split(".")[0]
        if dest in FLOORS and dest != source and FLOORS[dest] == FLOORS[source]:
            edges.setdefault(source, set()).add(dest)
    cycle = _find_cycle(edges)
    assert cycle is None, "packages on one floor import each other: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_modules_at_module_level() -> None:
    edges: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        for target, _line in _imports(module, path, module_level_only=True):
            while target and target not in MODULES:  # ``from pkg.mod import name`` names pkg.mod
                target = target.rpartition(".")[0]
            if target and target != module and not module.startswith(target + "."):
                edges.setdefault(module, set()).add(target)
    cycle = _find_cycle(edges)
    assert cycle is None, "modules import each other at module level: " + " -> ".join(cycle or [])


def _find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := walk(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := walk(start)) is not None:
            return found
    return None
