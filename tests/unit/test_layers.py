"""The three layers, read from the imports of every module (ast, no
import needed): runtime.core (the OCI runtime) imports neither engine nor
cli; runtime.engine imports no cli and only core's public modules
(runtime.core.PUBLIC); runtime.cli imports only core's and engine's
public names and makes no syscalls of its own."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

import runtime
from runtime.core import PUBLIC

PACKAGE = os.path.dirname(os.path.abspath(runtime.__file__))

# What a click verb module has no business doing itself: these modules
# are how Python makes syscalls beyond files and paths.
SYSCALL_MODULES = {"ctypes", "cffi", "fcntl", "select", "socket", "mmap", "resource", "termios", "pty", "prctl",
                   "pyroute2", "runtime.core._native"}
# os functions that are syscalls on something other than the CLI's own arguments.
OS_SYSCALLS = {"dup", "dup2", "fork", "kill", "killpg", "mount", "setns", "unshare", "pidfd_open", "waitpid",
               "wait4", "open", "close", "read", "write", "mkdir", "makedirs", "rmdir", "unlink", "remove",
               "rename", "chmod", "chown", "symlink", "mkfifo", "execv", "execve", "setsid", "pipe", "memfd_create"}


def modules() -> dict[str, str]:
    out = {}
    for dirpath, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, os.path.dirname(PACKAGE))[:-3].replace(os.sep, ".")
                out[rel.removesuffix(".__init__")] = path
    return out


def imports(path: str) -> list[tuple[str, int]]:
    """(module, line) of every import in PATH, at any depth (the CLI's
    lazy imports inside functions count as much as the top-level ones)."""
    found = []
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, node.lineno))
            # `from runtime.core import container` imports runtime.core.container
            found += [(f"{node.module}.{a.name}", node.lineno) for a in node.names
                      if f"{node.module}.{a.name}" in modules()]
    return found


def layer(module: str) -> str | None:
    for name in ("core", "engine", "cli"):
        if module == f"runtime.{name}" or module.startswith(f"runtime.{name}."):
            return name
    return None


ALL = modules()


def private_core(module: str) -> bool:
    """A core module outside PUBLIC (a package on the way to a public module is fine)."""
    return layer(module) == "core" and module in ALL and module not in PUBLIC \
        and not any(p.startswith(module + ".") for p in PUBLIC)


@pytest.mark.parametrize("module", sorted(m for m in ALL if layer(m) == "core"))
def test_core_imports_neither_engine_nor_cli(module):
    bad = [(m, n) for m, n in imports(ALL[module]) if layer(m) in ("engine", "cli")]
    assert not bad, f"{module} imports upwards: {bad}"


@pytest.mark.parametrize("module", sorted(m for m in ALL if layer(m) == "engine"))
def test_engine_uses_only_cores_public_modules_and_no_cli(module):
    bad = [(m, n) for m, n in imports(ALL[module])
           if layer(m) == "cli" or private_core(m)]
    assert not bad, f"{module} reaches past core's public API or into cli: {bad}"


@pytest.mark.parametrize("module", sorted(m for m in ALL if layer(m) == "cli"))
def test_cli_parses_and_calls_without_syscalls(module):
    found = imports(ALL[module])
    bad = [(m, n) for m, n in found if m in SYSCALL_MODULES or m.split(".")[0] in SYSCALL_MODULES
           or private_core(m)]
    assert not bad, f"{module} imports what the CLI must leave to core and engine: {bad}"
    tree = ast.parse(open(ALL[module]).read())
    calls = [(node.func.attr, node.lineno) for node in ast.walk(tree)
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name) and node.func.value.id == "os" and node.func.attr in OS_SYSCALLS]
    assert not calls, f"{module} makes syscalls itself: {calls}"


def test_the_cli_starts_without_the_heavy_modules():
    """`husk state` and friends (when Python serves them) must not pay for
    pyroute2, the registry client or the image code."""
    code = ("import sys, runtime.cli.main, runtime.cli.state, runtime.cli.kill, runtime.cli.delete;"
            "print(' '.join(m for m in sys.modules if m.startswith(('pyroute2', 'runtime.engine', 'http', 'ssl'))))")
    r = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "", r.stdout


def _graph(name: str) -> dict[str, set[str]]:
    """Layer NAME's modules and the modules of the same layer each imports
    (a package's own __init__ on the way to a submodule is no edge)."""
    return {m: {i for i, _ in imports(p) if i in ALL and layer(i) == name and i != m and not m.startswith(i + ".")}
            for m, p in ALL.items() if layer(m) == name}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in GRAPH as a path that ends where it starts, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for nxt in sorted(graph[module]):
            found = visit(nxt, path + [module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


@pytest.mark.parametrize("name", ["core", "engine", "cli"])
def test_no_import_cycle_inside_a_layer(name):
    """Each module of the layer can be read before the modules that use
    it: lazy imports inside functions count, as they hide a cycle rather
    than remove it."""
    cycle = _cycle(_graph(name))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", sorted(ALL))
def test_no_private_name_is_used_from_another_module(module):
    """A _name is its module's own: `from x import _y` and `x._y` from
    elsewhere reach past what the module offers."""
    tree = ast.parse(open(ALL[module]).read())
    runtime_modules = set()
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("runtime"):
            bad += [(f"{node.module}.{a.name}", node.lineno) for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
            runtime_modules |= {a.asname or a.name for a in node.names if f"{node.module}.{a.name}" in ALL}
        elif isinstance(node, ast.Import):
            runtime_modules |= {a.asname for a in node.names if a.asname and a.name in ALL}
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in runtime_modules
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            bad.append((f"{node.value.id}.{node.attr}", node.lineno))
    assert not bad, f"{module} uses private names of other modules: {bad}"
