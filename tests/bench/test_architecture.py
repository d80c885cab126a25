"""The layers hold: the parent side never imports JAX (checked by running it and by reading its
imports), nothing below the commands imports a command, no import cycle, no function longer
than ~80 lines without a reason written beside it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, bench_env

PACKAGES = ("bench", "mnist_kernels")
#: modules that run in the parent process (or in a process that only reads results).
PARENT = (
    "bench",
    "bench.cli",
    "bench.catalog",
    "bench.format",
    "bench.protocol",
    "bench.selection",
    "bench.stats",
    "bench.commands",
    "bench.runner",
    "bench.results",
    "bench.regression",
    "bench.report",
    "bench.history",
    "bench.ci",
    "mnist_kernels.catalog",
    "mnist_kernels.argtypes",
)
#: what the parent side may not import: JAX, PyTorch and the modules that use them.
FORBIDDEN = ("jax", "jaxlib", "torch", "bench.measure", "mnist_kernels.model")
FORBIDDEN += ("mnist_kernels.variants", "mnist_kernels.placement", "mnist_kernels.epoch")
#: parent-side functions that may import a measuring module, and why.
ALLOWED_LAZY = {
    # `bench run --distributed`: this process is one of the measuring processes of the run
    ("bench.commands.run", "bench.measure.distributed"),
}
MAX_FUNCTION_LINES = 80


def modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def is_parent(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PARENT) and not name.startswith(
        "bench.measure"
    )


def imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """``(module imported, at module level)`` for every import statement of ``path``."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(n) for n in tree.body}
    known = modules()
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, id(node) in top_level) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub if sub in known else base, id(node) in top_level))
    return out


def test_the_parent_side_imports_nothing_that_measures():
    problems = []
    for name, path in modules().items():
        if not is_parent(name):
            continue
        for target, top in imports(name, path):
            if not any(target == f or target.startswith(f + ".") for f in FORBIDDEN):
                continue
            if not top and (name, target) in ALLOWED_LAZY:
                continue
            problems.append(f"{name} imports {target}" + ("" if top else " (in a function)"))
    assert not problems, "\n".join(problems)


def test_running_the_parent_side_loads_no_jax(tmp_path):
    """Every parent-side module imported and two commands run in one interpreter: neither JAX
    nor a measuring module gets loaded (their workers are other processes)."""
    script = f"""
import importlib, json, sys
from pathlib import Path
names = {sorted(n for n in modules() if is_parent(n) and not n.endswith("__main__"))!r}
for n in names:
    importlib.import_module(n)
from bench import cli
code = cli.main(["run", "--quick", "--variants", "jit", "--layers", "784,10",
                 "--batch-sizes", "32", "--backends", "cpu", "--dry-run"])
assert code == 0, code
code = cli.main(["report", {str(ROOT / "tests" / "fixtures" / "report" / "laptop")!r},
                 "--out", {str(tmp_path / "report")!r}])
assert code == 0, code
bad = sorted({{m.split(".")[0] if m.split(".")[0] in ("jax", "jaxlib", "torch") else m
              for m in sys.modules if m.split(".")[0] in ("jax", "jaxlib", "torch")
              or m.startswith("bench.measure") or m in {list(FORBIDDEN)!r}}})
print(json.dumps(bad))
"""
    r = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().splitlines()[-1] == "[]", r.stdout


def test_only_the_command_line_imports_the_commands():
    problems = [
        f"{name} imports {target}"
        for name, path in modules().items()
        if not name.startswith("bench.commands") and name != "bench.cli"
        for target, _ in imports(name, path)
        if target.startswith("bench.commands")
    ]
    assert not problems, "\n".join(problems)


def test_no_import_cycle():
    """Module imports (at any level) between the project's modules form no cycle; a package's
    own ``__init__`` importing its submodules is not a cycle."""
    known = modules()
    graph = {
        name: {t for t, _ in imports(name, path) if t in known and t != name}
        for name, path in known.items()
    }
    for name in graph:  # importing a package from its own submodule is resolved by Python
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            cycle = visit(n)
            assert cycle is None, " -> ".join(cycle)


def test_functions_are_short_or_say_why():
    long = []
    for name, path in modules().items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            length = node.end_lineno - node.lineno + 1
            near = lines[max(node.lineno - 3, 0) : node.lineno + 1]
            if length > MAX_FUNCTION_LINES and not any("# long:" in ln for ln in near):
                long.append(f"{name}.{node.name}: {length} lines")
    assert not long, "\n".join(long)


@pytest.mark.parametrize("name", ["bench.measure.worker", "bench.runner.pool"])
def test_worker_and_parent_share_only_the_protocol(name):
    """The two sides of the worker protocol know each other only through bench.protocol."""
    other = "bench.runner" if name.startswith("bench.measure") else "bench.measure"
    targets = [t for t, _ in imports(name, modules()[name])]
    assert "bench.protocol" in targets
    assert not [t for t in targets if t.startswith(other)], targets
