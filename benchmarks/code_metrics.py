"""How a newcomer finds the code: imports placed inside functions, import cycles between biotune's modules, the
longest functions, and source lines — measured from the source alone (no import is run).

    python benchmarks/code_metrics.py              # a table on stdout
    python benchmarks/code_metrics.py --json benchmarks/code-metrics/<commit>.json  # and the numbers as JSON

An import inside a function counts as biotune's own when it names biotune (absolute or relative). Cycles: the
strongly connected components (more than one module) of the graph whose edges are every import of one biotune
module by another, at module level or inside a function; an import inside a function "closes a cycle" when its two
modules lie in one component. A package's `__init__` is a module of its own; imports under `if TYPE_CHECKING:` (type
hints only) are left out.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _targets(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The biotune modules an import statement reads."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - node.level + 1]
            root = ".".join(base + ([node.module] if node.module else []))
        else:
            root = node.module or ""
        subs = [f"{root}.{a.name}" for a in node.names]
        # `from package import module` reads the module; the package only where a name is not a module of it
        names = subs + ([root] if any(n not in known for n in subs) else [])
    out = []
    for n in names:
        while n and n not in known:
            n = n.rpartition(".")[0]
        if n.startswith("biotune") and n != module:
            out.append(n)
    return sorted(set(out))


class _Walk:
    """One pass over a module's syntax tree: its imports (module level or inside a function) and its functions."""

    def __init__(self, module: str, is_package: bool, known: set[str], edges: dict[str, set[str]]):
        self.module, self.is_package, self.known, self.edges = module, is_package, known, edges
        self.inner: list[tuple[str, str, int]] = []  # (module, target, line) of imports inside functions
        self.inner_total = 0
        self.functions: list[tuple[int, str]] = []

    def visit(self, node: ast.AST, in_function: bool = False, qual: str = "") -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{qual}.{child.name}" if qual else child.name
                self.functions.append((child.end_lineno - child.lineno + 1, f"{self.module}.{name}"))
                self.visit(child, True, name)
            elif isinstance(child, ast.ClassDef):
                self.visit(child, in_function, f"{qual}.{child.name}" if qual else child.name)
            elif isinstance(child, ast.If) and ast.unparse(child.test).endswith("TYPE_CHECKING"):
                continue  # imports for type hints only: never run, no dependency at run time
            elif isinstance(child, ast.Import | ast.ImportFrom):
                targets = _targets(child, self.module, self.is_package, self.known)
                self.edges[self.module].update(targets)
                if in_function:
                    self.inner_total += 1
                    self.inner.extend((self.module, t, child.lineno) for t in targets)
            else:
                self.visit(child, in_function, qual)


def measure() -> dict:
    files = sorted(SRC.rglob("*.py"))
    known = {module_name(p) for p in files}
    edges: dict[str, set[str]] = {m: set() for m in known}
    inner: list[tuple[str, str, int]] = []
    inner_total, functions, lines = 0, [], 0
    for path in files:
        text = path.read_text()
        lines += len(text.splitlines())
        walk = _Walk(module_name(path), path.name == "__init__.py", known, edges)
        walk.visit(ast.parse(text))
        inner += walk.inner
        inner_total += walk.inner_total
        functions += walk.functions
    components = _cycles(edges)
    where = {m: i for i, comp in enumerate(components) for m in comp}
    closing = [(m, t, line) for m, t, line in inner if m in where and where.get(t) == where[m]]
    functions.sort(reverse=True)
    return {
        "source_lines": lines,
        "modules": len(known),
        "imports_inside_functions": inner_total,
        "imports_inside_functions_of_biotune": len({(m, line) for m, _, line in inner}),
        "per_1000_lines": round(1000 * inner_total / lines, 1),
        "cycles": [sorted(c) for c in components],
        "modules_in_cycles": sum(len(c) for c in components),
        "inner_imports_closing_a_cycle": [f"{m}:{line} -> {t}" for m, t, line in closing],
        "longest_functions": [{"lines": n, "function": name} for n, name in functions[:5]],
    }


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def connect(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            connect(v)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args()
    m = measure()
    print(f"source lines {m['source_lines']:,} in {m['modules']} modules")
    print(
        f"imports inside functions: {m['imports_inside_functions']} ({m['per_1000_lines']} per 1,000 lines), "
        f"{m['imports_inside_functions_of_biotune']} of them biotune's own"
    )
    print(
        f"import cycles: {len(m['cycles'])} ({m['modules_in_cycles']} modules); imports inside functions closing "
        f"one: {len(m['inner_imports_closing_a_cycle'])}"
    )
    for c in m["cycles"]:
        print("  cycle: " + ", ".join(c))
    print("longest functions: " + "; ".join(f"{f['function']} {f['lines']}" for f in m["longest_functions"]))
    if args.json:
        Path(args.json).write_text(json.dumps(m, indent=1) + "\n")


if __name__ == "__main__":
    main()
