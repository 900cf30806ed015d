"""The public API's shape: arguments past the first ones are keyword-only, so adding one is safe."""

import ast
from pathlib import Path

import workbench

ROOT = Path(workbench.__file__).parent
DASHBOARDS = ROOT.parent / "dashboards"  # installed as workbench.dashboards
# internals that a user never calls: exception constructors, engine steps, the GEMM launcher
EXEMPT = {"errors.py": None, "snn/numpy_engine.py": {"NumpyEngine.propagate", "NumpyEngine.stdp"},
          "ops.py": {"GemmEngine.enqueue"}, "runtime/opencl.py": {"Program.__init__"}}


def _public_functions():
    paths = [(p, p.relative_to(ROOT).as_posix()) for p in sorted(ROOT.rglob("*.py"))]
    paths += [(p, f"dashboards/{p.name}") for p in sorted(DASHBOARDS.glob("*.py"))]
    for path, rel in paths:
        exempt = EXEMPT.get(rel, set())
        if exempt is None:
            continue
        stack = [(ast.parse(path.read_text()), "", True)]
        while stack:
            node, prefix, public = stack.pop()
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.ClassDef):
                    stack.append((child, prefix + child.name + ".",
                                  public and not child.name.startswith("_")))
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and public:
                    name = prefix + child.name
                    if (child.name.startswith("_") and child.name != "__init__") or name in exempt:
                        continue
                    yield rel, child.lineno, name, child.args


def test_public_functions_with_four_or_more_parameters_take_the_rest_by_keyword():
    """Positional: the required parameters, or the first two when fewer are required."""
    offenders = []
    for rel, line, name, args in _public_functions():
        pos = [a.arg for a in args.posonlyargs + args.args]
        if pos and pos[0] in ("self", "cls"):
            pos = pos[1:]
        if len(pos) + len(args.kwonlyargs) < 4:
            continue
        allowed = max(len(pos) - len(args.defaults), 2)
        if len(pos) > allowed:
            offenders.append(f"{rel}:{line} {name}({', '.join(pos)})")
    assert not offenders, "make these keyword-only past the first ones:\n" + "\n".join(offenders)
