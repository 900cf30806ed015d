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


def _module(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = [root.name, *rel.parts]
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


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def _graph(root: Path = ROOT, allowed=ALLOWED) -> dict[str, set[str]]:
    """Module -> the modules importing it runs first. Importing ``p.q.m`` first runs the packages
    ``p`` and ``p.q`` (their ``__init__``), so an import that leaves the importer's own packages
    depends on the target's packages too: that is how a cycle through an ``__init__`` fails with
    "partially initialized module"."""
    files = {_module(p, root): p for p in root.rglob("*.py") if "kernels" not in p.parts}
    modules = set(files)
    graph = {}
    for m, p in files.items():
        deps = set()
        own = set(_ancestors(m)) | ({m} if p.name == "__init__.py" else set())
        for t in _imports(p, m, modules):
            deps.add(t)
            deps |= {a for a in _ancestors(t) if a in modules and a not in own}
        graph[m] = deps
    for a, b in allowed:
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
    cycle = _cycle(_graph())
    assert cycle is None, " -> ".join(cycle)


def test_the_graph_sees_a_cycle_through_a_package_init(tmp_path):
    """pkg.a.low imports pkg.b.x; importing pkg.b runs pkg/b/__init__, which imports pkg.b.y,
    which needs pkg.a (whose __init__ imports pkg.a.low): Python fails with "partially
    initialized module", and so must the test."""
    files = {"__init__.py": "", "a/__init__.py": "from .low import f\n", "a/low.py": "from ..b.x import g\n",
             "b/__init__.py": "from .y import h\n", "b/x.py": "g = 1\n", "b/y.py": "from ..a import f\n"}
    for rel, text in files.items():
        (tmp_path / "pkg" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "pkg" / rel).write_text(text)
    assert _cycle(_graph(tmp_path / "pkg", allowed=())) is not None
    (tmp_path / "pkg" / "b" / "__init__.py").write_text("")  # no __init__ import: no cycle
    assert _cycle(_graph(tmp_path / "pkg", allowed=())) is None


def test_the_checker_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
