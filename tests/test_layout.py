"""The package's shape holds: no source file over 400 lines, and an import graph without
cycles - neither at module level nor hidden behind an import inside a function."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = {".".join(p.relative_to(SRC).with_suffix("").parts[:-1] if p.name == "__init__.py"
                    else p.relative_to(SRC).with_suffix("").parts): p
           for p in (SRC / "vidiff").rglob("*.py")}


def _targets(mod: str, node: ast.ImportFrom, is_pkg: bool) -> list[str]:
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    if node.level:
        base = base[:len(base) - (node.level - 1)]
        name = ".".join(base + ([node.module] if node.module else []))
    else:
        name = node.module or ""
    out = []
    for a in node.names:
        cand = f"{name}.{a.name}"
        out.append(cand if cand in MODULES else name)
    return [t for t in out if t in MODULES]


def _graph():
    top, lazy = {m: set() for m in MODULES}, []
    for m, p in MODULES.items():
        tree = ast.parse(p.read_text())
        module_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                ts = _targets(m, node, p.name == "__init__.py")
                if id(node) in module_level:
                    top[m] |= set(ts)
                else:
                    lazy += [(m, t) for t in ts]
    for m in list(top):  # importing a.b.c first imports its packages a and a.b
        for t in list(top[m]):
            parts = t.split(".")
            for i in range(1, len(parts)):
                parent = ".".join(parts[:i])
                if parent in MODULES and parent != m and not m.startswith(parent + "."):
                    top[m].add(parent)
    return top, lazy


def _reaches(top, a, b, seen=None):
    seen = set() if seen is None else seen
    if a == b:
        return True
    seen.add(a)
    return any(_reaches(top, n, b, seen) for n in top[a] if n not in seen)


def _related(a, b):
    return a.startswith(b + ".") or b.startswith(a + ".")


def test_no_import_cycles_and_no_lazy_import_hiding_one():
    top, lazy = _graph()
    cycles = [(m, t) for m in top for t in top[m] if not _related(m, t) and _reaches(top, t, m)]
    assert not cycles
    hidden = [(m, t) for m, t in lazy if not _related(m, t) and _reaches(top, t, m)]
    assert not hidden


def test_no_source_file_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in MODULES.values()
            if (n := len(p.read_text().splitlines())) > 400}
    assert not long
