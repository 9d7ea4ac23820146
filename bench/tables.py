"""The tables of a results document, for the README (Markdown) and the slides (HTML).

`make bench` and `make bench-scale` write each run's document to results/ and the latest to
``<figures>/bench.json`` or ``<figures>/bench-scale.json`` beside its charts, which is what the
README's table and the slides show.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path

from shared.env import ROOT


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)
    numeric_from: int = 1  # columns from this one on are right-aligned


def bench_table(document: dict) -> Table:
    p, m, v = document["parameters"], document["machine"], document["versions"]
    caption = (
        f"Measured {document['created'][:10]} on {m['cores']} cores, {m['memory_gb']} GB "
        f"({m['system']}); PostgreSQL {v['postgresql']}, Django {v['django']}, "
        f"gunicorn {v['gunicorn']} ({p['workers']} workers), locust {v['locust']}: "
        f"{p['users']} users, {p['accounts']} accounts, {p['duration']} s per target per round, "
        f"{p['rounds']} rounds, medians with the min-max over rounds."
    )
    header = ["target", "requests/s", "of ceiling", "p50 ms", "p95 ms", "p99 ms", "requests",
              "failures", "wrong rows"]  # fmt: skip
    rows = []
    for name, row in document["summary"].items():
        share = f"{row['of_ceiling']:.0%}" if row.get("of_ceiling") is not None else "-"
        rows.append([
            name,
            f"{row['rps_median']:.1f} ({row['rps_min']:.1f}-{row['rps_max']:.1f})",
            share,
            f"{row['p50_ms_median']:.0f}",
            f"{row['p95_ms_median']:.0f}",
            f"{row['p99_ms_median']:.0f}",
            f"{row['requests']:,}",
            str(row["failures"]),
            str(row["wrong_rows"]),
        ])  # fmt: skip
    notes = []
    for label, row in document["summary"].items():
        if row.get("cost_vs_control") is not None:
            busy = f" ({label.partition(' @')[2]} tenants)" if " @" in label else ""
            cost = row["cost_vs_control"]
            notes.append(
                f"Row-level security costs {cost:.1%} of rls's requests/s against its control"
                f"{busy}."
                if cost >= 0
                else f"rls served {-cost:.1%} more requests/s than its control{busy}."
            )
    notes.extend(ratio_lines(document["summary"]))
    return Table(caption, header, rows, notes)


def _counts(summary: dict) -> list[int]:
    return sorted({int(k.rpartition(" @")[2]) for k in summary if " @" in k})


def bench_pivot(document: dict) -> Table:
    """The slides' table: a row per target, its requests/s (and share of the ceiling) per
    number of busy tenants; the README has every figure."""
    summary, p = document["summary"], document["parameters"]
    counts = _counts(summary)
    if not counts:  # a run from before busy-tenant counts
        return bench_table(document)
    targets = dict.fromkeys(k.rpartition(" @")[0] for k in summary if " @" in k)
    rows = []
    for target in targets:
        cells = [target]
        for count in counts:
            row = summary.get(f"{target} @{count}")
            share = row and row.get("of_ceiling") if target != "ceiling" else None
            if row is None:
                cells.append("-")
                continue
            cells.append(f"{row['rps_median']:.0f}" + (f" ({share:.0%})" if share else ""))
        rows.append(cells)
    bad = sum(r["failures"] + r["wrong_rows"] for r in summary.values())
    caption = (
        f"make bench, {document['created'][:10]}: requests/s, median of {p['rounds']} rounds of "
        f"{p['duration']} s (share of the ceiling), by busy tenants; "
        f"{bad or 'no'} failures or wrong rows."
    )
    header = ["target", *(f"{count} tenants" for count in counts)]
    return Table(caption, header, rows, ratio_lines(summary))


def ratio_lines(summary: dict) -> list[str]:
    """One line per comparison, its ratio at each number of busy tenants."""
    by_text: dict[str, list[str]] = {}
    for text, value in ratios(summary):
        what, _, count = text.rpartition(" at ")
        by_text.setdefault(what, []).append(f"{value:.2f} at {count}")
    return [f"{what}: {', '.join(values)}." for what, values in by_text.items()]


def ratios(summary: dict) -> list[tuple[str, float]]:
    """What the README compares: each strategy against the unsafe baseline and each other."""
    wanted = [
        ("multidb / baseline-multidb", "multidb", "baseline-multidb"),
        ("rls / baseline-shared", "rls", "baseline-shared"),
        ("schemas / baseline-shared", "schemas", "baseline-shared"),
        ("multidb / rls", "multidb", "rls"),
    ]
    counts = sorted({int(k.rpartition(" @")[2]) for k in summary if " @" in k})
    found = []
    for text, top, bottom in wanted:
        for count in counts:
            a, b = summary.get(f"{top} @{count}"), summary.get(f"{bottom} @{count}")
            if a and b and b["rps_median"]:
                found.append((f"{text} at {count} tenants", a["rps_median"] / b["rps_median"]))
    return found


def scale_table(document: dict) -> Table:
    m, p = document["machine"], document["parameters"]
    rounds = p.get("rounds", 1)
    caption = (
        f"Measured {document['created'][:10]} on {m['cores']} cores, {m['memory_gb']} GB; "
        f"PostgreSQL {document['versions']['postgresql']}; {p['workers']} gunicorn workers, "
        f"{p['users']} locust users for {p['duration']} s per sample, "
        f"{rounds} interleaved rounds: requests/s is the median (lowest-highest)."
    )
    keys = list(document["measures"])

    def cell(row: dict, key: str) -> str:
        if row.get(key) is None:
            return "-"
        if key == "rps" and "rps_min" in row:
            return f"{row[key]:,} ({row['rps_min']:,.0f}-{row['rps_max']:,.0f})"
        return f"{row[key]:,}"

    rows = [
        [row["strategy"], f"{row['tenants']:,}"] + [cell(row, k) for k in keys]
        for row in document["rows"]
    ]
    header = ["strategy", "tenants", *(k.replace("_", " ") for k in keys)]
    return Table(caption, header, rows, notes=list(document.get("verdicts", [])))


def citus_lines(document: dict) -> list[str]:
    """What a run with Citus adds: each Citus target against its strategy on one server, and
    where a page view's time goes on each."""
    lines = []
    for label, row in document["summary"].items():
        if row.get("of_single_server") is not None:
            target, _, count = label.partition(" @")
            single = target.removesuffix("-citus")
            lines.append(
                f"{target} served {row['of_single_server']:.0%} of the requests/s {single} "
                f"served on one server ({count} busy tenants, same run)."
            )
    for target, workers in (document.get("placement") or {}).items():
        total = sum(workers.values())
        spread = ", ".join(f"{n} ({n / total:.0%})" for n in workers.values())
        lines.append(f"{target}: {total} tenants over {len(workers)} workers: {spread}.")
    hop = document.get("where_time_goes") or {}
    for target in ("rls-citus", "schemas-citus"):
        single = target.removesuffix("-citus")
        if target in hop and single in hop:
            one, many = hop[single], hop[target]
            lines.append(
                f"Where a page view's time goes ({single} on one server / on Citus, medians over "
                f"{many['views']} views of {many['tenants']} tenants): the view in-process "
                f"{one['request_ms']:.2f} / {many['request_ms']:.2f} ms; the page statement "
                f"planned in {one['planning_ms']:.2f} / {many['planning_ms']:.2f} ms and run in "
                f"{one['execution_ms']:.2f} / {many['execution_ms']:.2f} ms by the server that "
                f"receives it, of which {many['worker_ms']:.2f} ms on the worker: the "
                f"coordinator's hop is the rest, "
                f"{many['execution_ms'] - many['worker_ms']:.2f} ms."
            )
    return lines


def bench_citus_table(document: dict) -> Table:
    table = bench_table(document)
    table.notes.extend(citus_lines(document))
    return table


def bench_citus_pivot(document: dict) -> Table:
    table = bench_pivot(document)
    table.notes.extend(citus_lines(document))
    return table


TABLES = {"bench": bench_table, "bench-citus": bench_citus_table, "bench-scale": scale_table}


def markdown(table: Table) -> str:
    align = ["---" if i < table.numeric_from else "---:" for i in range(len(table.header))]
    lines = [
        table.caption,
        "",
        "| " + " | ".join(table.header) + " |",
        "|" + "|".join(align) + "|",
        *("| " + " | ".join(row) + " |" for row in table.rows),
    ]
    if table.notes:
        lines += ["", *table.notes]
    return "\n".join(lines)


def html_table(table: Table) -> str:
    def cells(tag: str, values: list[str]) -> str:
        return "".join(f"<{tag}>{html.escape(v)}</{tag}>" for v in values)

    return "\n".join(
        [
            f'<p class="caption">{html.escape(table.caption)}</p>',
            '<table class="results"><thead><tr>' + cells("th", table.header) + "</tr></thead>"
            "<tbody>" + "".join(f"<tr>{cells('td', r)}</tr>" for r in table.rows) + "</tbody>"
            "</table>",
            *(f'<p class="caption">{html.escape(note)}</p>' for note in table.notes),
        ]
    )


def latest_path(folder: Path, kind: str) -> Path:
    return folder / f"{kind}.json"


def write_latest(document: dict, folder: Path) -> Path:
    """Keep ``document`` as the latest of its kind, beside the charts drawn from it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = latest_path(folder, document["kind"])
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# The slides have room for less than the README.
SLIDE_TABLES = {**TABLES, "bench": bench_pivot, "bench-citus": bench_citus_pivot}


def read_latest(folder: Path, kind: str) -> Table | None:
    path = latest_path(folder, kind)
    if not path.exists():
        return None
    return SLIDE_TABLES[kind](json.loads(path.read_text()))


def shown(path: Path) -> str:
    """A path as the user should read it: relative to the checkout when inside it."""
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
