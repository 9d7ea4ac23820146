"""How the code is laid out: the app apart from the benchmark harness, no import cycles, no
link to a file that is not there."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from shared.env import ROOT

APP_PACKAGES = ("shared", "rls", "multidb", "schemas")
HARNESS_ONLY = ("locust", "matplotlib", "psutil", "gunicorn")

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import django
django.setup()
for package in ("shared", sys.argv[1]):
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, package + "."):
        # wsgi/asgi start serving (and check the database); manage runs a command.
        if module.name.rsplit(".", 1)[-1] not in ("wsgi", "asgi", "manage"):
            importlib.import_module(module.name)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


@pytest.mark.parametrize("strategy", ["rls", "multidb", "schemas"])
def test_the_app_imports_none_of_the_benchmark_harness(strategy):
    """Every module of ``shared`` and of the strategy, imported in a Django process."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING, strategy],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": f"{strategy}.settings"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    imported = set(json.loads(result.stdout))
    assert {"shared", strategy, "django", "psycopg"} <= imported  # it did import the app
    assert "bench" not in imported
    assert not imported & set(HARNESS_ONLY), sorted(imported & set(HARNESS_ONLY))


def first_party_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports, anywhere in it but under ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(node)
        for branch in ast.walk(tree)
        if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
        for node in ast.walk(branch)
    }

    def module_of(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {m for m in map(module_of, names) if m}
    return found


def test_no_module_imports_one_that_imports_it_back():
    paths = {}
    for package in (*APP_PACKAGES, "bench"):
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            paths[name] = path
    graph = {name: first_party_imports(path, set(paths)) - {name} for name, path in paths.items()}
    assert sum(map(len, graph.values())) > 100  # the graph was really read

    def reaches(start: str, goal: str) -> list[str] | None:
        stack, seen = [[start]], {start}
        while stack:
            trail = stack.pop()
            for following in graph[trail[-1]]:
                if following == goal:
                    return [*trail, goal]
                if following not in seen:
                    seen.add(following)
                    stack.append([*trail, following])
        return None

    cycles = [trail for name in graph if (trail := reaches(name, name))]
    assert not cycles, " -> ".join(cycles[0])


def test_every_relative_link_in_the_docs_names_a_file_that_exists():
    """A README that points at a moved or deleted file misleads its reader."""
    listed = subprocess.run(["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True)
    documents = [ROOT / name for name in listed.stdout.split() if "node_modules" not in name]
    assert len(documents) >= 5
    broken = [
        f"{document.relative_to(ROOT)}: {target}"
        for document in documents
        for target in re.findall(r"\]\(([^)#\s]+)", document.read_text())
        if not target.startswith(("http://", "https://", "mailto:"))
        and not (document.parent / target).exists()
    ]
    assert not broken, broken
