"""Thread pools of workflow jobs: polars and the tokenizers take the rule's threads."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from llmrouter.threads import bind_threads

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "workflow_scripts").glob("*.py"))


def test_bound_threads_size_the_polars_pool_it_starts_on_import():
    code = ("import os, polars; print(polars.thread_pool_size(), os.environ['RAYON_NUM_THREADS'])")
    env = {k: v for k, v in os.environ.items() if k not in ("POLARS_MAX_THREADS",
                                                             "RAYON_NUM_THREADS")}
    for threads, expected in ((1, "1 1"), (0, "1 1")):
        done = subprocess.run(
            [sys.executable, "-c", f"from llmrouter.threads import bind_threads; "
             f"bind_threads({threads}); {code}"],
            capture_output=True, text=True, env={**env, "PYTHONPATH": str(REPO)}, check=True)
        assert done.stdout.split() == expected.split()


def test_binding_after_polars_is_imported_is_refused():
    import polars  # noqa: F401

    with pytest.raises(RuntimeError, match="before polars is imported"):
        bind_threads(1)


def first_line(tree: ast.Module, test) -> int:
    return min((node.lineno for node in tree.body if test(node)), default=10**9)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_script_binds_its_threads_before_importing_anything_else(script):
    """A script that imported polars (or the library, which does) first would run one polars
    thread per CPU whatever its rule's threads: bind_threads would raise, but only when the
    rule runs."""
    tree = ast.parse(script.read_text())

    def binds(node):
        return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", "") == "bind_threads"
                and ast.unparse(node.value.args[0]) == "snakemake.threads")

    def imports_other(node):  # anything but the standard library and llmrouter.threads
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or "."]  # a relative import: not the standard library
        else:
            return False
        return any(name != "llmrouter.threads" and name.split(".")[0] not in
                   sys.stdlib_module_names for name in names)

    assert first_line(tree, binds) < first_line(tree, imports_other), \
        f"{script.name}: bind_threads(snakemake.threads) must come before its other imports"
