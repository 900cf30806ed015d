"""The package's import graph has no cycle, counting imports inside functions too (where cycles
used to hide)."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).resolve().parent
# The one import kept inside a function on purpose: SNNNetwork.simulator() is a convenience for
# Simulator(net, ...); the simulator needs the network's classes, the network never needs the
# simulator to be built.
ALLOWED = {("workbench.snn.network", "workbench.snn.simulator")}


def _module(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = ["workbench", *rel.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from . import x``: the module x, not the package; ``from .m import x``: m (or m.x)
            candidates = (([] if node.module is None else [target])
                          + [f"{target}.{a.name}" for a in node.names])
        elif isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        else:
            continue
        for c in candidates:
            if c in modules and c != name:
                out.add(c)
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in ROOT.rglob("*.py") if "kernels" not in p.parts}
    modules = set(files)
    graph = {m: _imports(p, m, modules) for m, p in files.items()}
    for a, b in ALLOWED:
        graph.get(a, set()).discard(b)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_no_import_cycle_between_modules():
    # a package's __init__ gathering its own modules is not a cycle of ideas: those edges go
    graph = {m: {n for n in deps if not n.startswith(m + ".")} for m, deps in _graph().items()}
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_the_checker_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
