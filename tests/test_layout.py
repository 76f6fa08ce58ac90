"""Package layout: the library never imports ``wflow.app``; no import cycles; app imports at top."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "wflow"
#: imports that may stay inside functions anywhere: optional, heavy dependencies
LAZY_OK = {"torch", "dask", "distributed"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """(target module, lineno, at_module_top) for every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    for node in ast.walk(tree):
        at_top = id(node) not in inner
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, at_top
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if node.module is None or mod.startswith("wflow"):
                # `from . import x` / `from .pkg import sub`: a submodule when one exists
                for a in node.names:
                    sub = f"{mod}.{a.name}"
                    yield (sub if _is_module(sub) else mod), node.lineno, at_top
            else:
                yield mod, node.lineno, at_top


def _is_module(dotted: str) -> bool:
    p = ROOT.parent.joinpath(*dotted.split("."))
    return p.with_suffix(".py").is_file() or (p / "__init__.py").is_file()


FILES = sorted(ROOT.rglob("*.py"))


def test_the_library_never_imports_the_application():
    offenders = [
        f"{f.relative_to(ROOT.parent)}:{line} imports {mod}"
        for f in FILES
        if "app" not in f.relative_to(ROOT).parts[:1] and f.name != "__main__.py"
        for mod, line, _ in _imports(f)
        if mod == "wflow.app" or mod.startswith("wflow.app.")
    ]
    assert offenders == []


def _graph(top_only: bool) -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for f in FILES:
        src = _module_name(f)
        g.setdefault(src, set())
        for mod, _, at_top in _imports(f):
            if mod.startswith("wflow") and mod != src and (at_top or not top_only):
                g[src].add(mod)
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(g):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_cycle():
    # the check itself must be able to fail
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    # a package's __init__ may name its submodules lazily; edges into a package (__init__) do not
    # load its submodules, so the graph is exact
    assert _cycles(_graph(top_only=False)) == []


def test_application_imports_sit_at_module_top():
    inner = [
        f"{f.relative_to(ROOT.parent)}:{line} imports {mod} inside a function"
        for f in FILES
        if f.relative_to(ROOT).parts[0] in ("app", "io.py", "memory.py")
        for mod, line, at_top in _imports(f)
        if not at_top and mod.split(".")[0] not in LAZY_OK
    ]
    assert inner == []


def test_help_and_verify_do_not_load_matplotlib():
    code = (
        "import contextlib, io, sys\n"
        "from wflow.app.cli import build_parser, main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        build_parser().parse_args(['--help'])\n    except SystemExit:\n        pass\n"
        "    code = main(['verify', '--quick'])\n"
        "print(code, 'matplotlib' in sys.modules)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=ROOT.parent)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["0", "False"]
