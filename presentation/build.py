"""Build the deck: presentation/slides.html → presentation/index.html, with code pulled from the
repository as it is today.

    python presentation/build.py [--check]

In slides.html, ``<pre data-quote="rls/scoping.py::TenantQuerySet._fetch_all"></pre>`` quotes a
Python object by its dotted name (class, function, method or assignment), and
``<pre data-quote="shared/db/bootstrap.sql#roles"></pre>`` the lines between ``-- slide: roles``
(or ``# slide: roles``) and ``-- end slide``. A quote that is not there stops the build with
the slide that wanted it, so the deck cannot drift from the code. ``<!-- bench-table -->`` and
``<!-- bench-scale-table -->`` become the tables of the results `make bench` and `make
bench-scale` last kept in presentation/figures/ (bench.json, bench-scale.json).
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import re
import sys
from pathlib import Path

from bench.tables import html_table, read_latest
from shared.env import ROOT

HERE = Path(__file__).resolve().parent
QUOTE = re.compile(r'<pre data-quote="([^"]+)"(?: data-lines="(\d+)-(\d+)")?></pre>')
LANGUAGES = {".py": "python", ".sql": "sql", ".html": "html", ".yml": "yaml", ".toml": "toml"}


class QuoteMissing(Exception):
    pass


def python_object(path: Path, dotted: str) -> str:
    source = path.read_text()
    scope: list[ast.stmt] = ast.parse(source).body
    node = None
    for part in dotted.split("."):
        node = next((n for n in scope if _name_of(n) == part), None)
        if node is None:
            raise QuoteMissing(f"has no {dotted}")
        scope = getattr(node, "body", [])
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    lines = source.splitlines()[first - 1 : node.end_lineno]
    indent = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
    return "\n".join(line[indent:] for line in lines)


def _name_of(node: ast.stmt) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id
    return None


def marked_region(path: Path, name: str) -> str:
    lines = path.read_text().splitlines()
    start = re.compile(rf"^\s*(--|#)\s*slide:\s*{re.escape(name)}\s*$")
    try:
        first = next(i for i, line in enumerate(lines) if start.match(line))
        last = next(
            i for i in range(first + 1, len(lines)) if re.match(r"^\s*(--|#)\s*end slide", lines[i])
        )
    except StopIteration:
        raise QuoteMissing(f"has no region marked `slide: {name}`") from None
    return "\n".join(lines[first + 1 : last])


def quote(reference: str, root: Path = ROOT) -> tuple[str, str]:
    """The code a reference names, and its language."""
    if "::" in reference:
        file, _, name = reference.partition("::")
        getter = python_object
    elif "#" in reference:
        file, _, name = reference.partition("#")
        getter = marked_region
    else:
        raise QuoteMissing(f"{reference!r}: use path::Name or path#region")
    path = root / file
    if not path.is_file():
        raise QuoteMissing(f"{file} does not exist")
    try:
        return getter(path, name), LANGUAGES.get(path.suffix, "plaintext")
    except QuoteMissing as exc:
        raise QuoteMissing(f"{file} {exc}") from None


def results_table(kind: str, figures: Path = HERE / "figures") -> str:
    """The table of the results document `make bench` (``bench``) or `make bench-scale`
    (``bench-scale``) last kept beside its charts."""
    table = read_latest(figures, kind)
    return html_table(table) if table else "<p>(not measured yet)</p>"


def citus_plan(figures: Path = HERE / "figures") -> str:
    """The page statement's plan on Citus from the last `make bench CLUSTER=citus`."""
    path = figures / "bench-citus.json"
    if not path.exists():
        return "<p>(not measured yet: make bench CLUSTER=citus)</p>"
    found = json.loads(path.read_text()).get("where_time_goes", {}).get("rls-citus", {})
    plan = found.get("plan")
    if not plan:
        return "<p>(not measured yet: make bench CLUSTER=citus)</p>"
    # Its head: the one task, the worker it goes to, and what that worker reads first.
    lines = plan.splitlines()
    first_scan = next((i for i, line in enumerate(lines) if "Scan using" in line), len(lines))
    head = "\n".join([*lines[: first_scan + 2], "  …"])
    return (
        f'<pre class="quote plan"><code class="language-plaintext" data-trim>{html.escape(head)}'
        '</code></pre><p class="where">rls-citus: EXPLAIN of the page statement, runtime role '
        "(its head)</p>"
    )


def build(source: Path = HERE / "slides.html", root: Path = ROOT) -> str:
    text = source.read_text()

    def replace(match: re.Match) -> str:
        reference, first, last = match.groups()
        slide = text[: match.start()].count("<section")
        try:
            code, language = quote(reference, root)
        except QuoteMissing as exc:
            raise QuoteMissing(f"slide {slide}: {exc}") from None
        if first:
            code = "\n".join(code.splitlines()[int(first) - 1 : int(last)])
        where = reference.replace("::", " · ").replace("#", " · ")
        return (
            f'<pre class="quote"><code class="language-{language}" data-trim>'
            f'{html.escape(code)}</code></pre><p class="where">{html.escape(where)}</p>'
        )

    text = QUOTE.sub(replace, text)
    text = text.replace("<!-- bench-table -->", results_table("bench"))
    text = text.replace("<!-- citus-plan -->", citus_plan())
    return text.replace("<!-- bench-scale-table -->", results_table("bench-scale"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="resolve every quote, write nothing")
    args = parser.parse_args(argv)
    try:
        deck = build()
    except QuoteMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.check:
        (HERE / "index.html").write_text(deck)
        print(f"Built presentation/index.html ({deck.count('<section')} slides)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
