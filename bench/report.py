"""Charts (SVG, matplotlib) and the README's tables from the benchmarks' results documents.

    python -m bench.report results/bench-<time>.json

draws them again from a kept run: the charts, the slides' copy and the README's table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt

# Ids in the SVG derive from this salt, not from chance: a re-run with the same numbers
# produces the same file.
matplotlib.rcParams["svg.hashsalt"] = "tenancy"
matplotlib.rcParams["font.size"] = 11

COLOURS = {
    "rls": "#2a6f97",
    "rls-control": "#9cc5e0",
    "multidb": "#c2571a",
    "schemas": "#3a7d44",
    "ceiling": "#8d8d8d",
    "baseline-shared": "#d8b365",
    "baseline-multidb": "#8c510a",
    "rls-citus": "#7fb8dc",
    "schemas-citus": "#8cc084",
}


def _save(figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)
    return path


def _caption(document: dict) -> str:
    p, m = document["parameters"], document["machine"]
    return (
        f"{m['cores']} cores · {p['workers']} gunicorn workers · {p['users']} locust users · "
        f"{p['accounts']} accounts · {p['rounds']} rounds of {p['duration']} s · "
        f"{document['created'][:10]}"
    )


def _grouped(summary: dict) -> tuple[list[str], list[int], float]:
    """Targets and busy-tenant counts of a summary keyed "<target> @<count>" (a run from
    before counts has one group, 0), and the width of one bar."""
    keys = [k.rpartition(" @") if " @" in k else (k, "", "0") for k in summary]
    targets = list(dict.fromkeys(k[0] for k in keys))
    counts = sorted({int(k[2]) for k in keys})
    return targets, counts, 0.84 / max(len(targets), 1)


def _entry(summary: dict, target: str, count: int) -> dict | None:
    return summary.get(f"{target} @{count}") or (summary.get(target) if count == 0 else None)


def _bars(axes, summary: dict, value, low, high) -> None:
    """A bar per target in a group per busy-tenant count, with a whisker from low to high."""
    targets, counts, width = _grouped(summary)
    for i, target in enumerate(targets):
        found = [(x, e) for x, c in enumerate(counts) if (e := _entry(summary, target, c))]
        positions = [x + (i - (len(targets) - 1) / 2) * width for x, _ in found]
        values = [value(e) for _, e in found]
        whiskers = [[v - low(e) for v, (_, e) in zip(values, found, strict=True)],
                    [high(e) - v for v, (_, e) in zip(values, found, strict=True)]]  # fmt: skip
        axes.bar(positions, values, width * 0.92, label=target, yerr=whiskers, capsize=2,
                 color=COLOURS.get(target, "#555"), error_kw={"elinewidth": 0.8})  # fmt: skip
    axes.set_xticks(range(len(counts)), [f"{c} busy tenants" if c else "" for c in counts])
    axes.spines[["top", "right"]].set_visible(False)
    axes.legend(frameon=False, fontsize=8, ncols=4, loc="upper left")


def bench_charts(document: dict, folder: Path) -> list[Path]:
    summary, kind = document["summary"], document["kind"]
    figure, axes = plt.subplots(figsize=(9, 4.4))
    _bars(axes, summary, lambda e: e["rps_median"], lambda e: e["rps_min"], lambda e: e["rps_max"])
    axes.set_ylabel("requests/s (median, min-max over rounds)")
    axes.set_title("Subtask list: throughput", loc="left")
    axes.set_ylim(0, max(e["rps_max"] for e in summary.values()) * 1.3)
    figure.text(0.01, 0.01, _caption(document), fontsize=8, color="#555")
    figure.subplots_adjust(bottom=0.18)
    throughput = _save(figure, folder / f"{kind}-throughput.svg")

    figure, axes = plt.subplots(figsize=(9, 4.4))
    _bars(axes, summary, lambda e: e["p95_ms_median"], lambda e: e["p50_ms_median"],
          lambda e: e["p99_ms_median"])  # fmt: skip
    axes.set_ylabel("latency, ms (median over rounds)")
    axes.set_title("Subtask list: latency, p95 (whiskers: p50 to p99)", loc="left")
    axes.set_ylim(0, max(e["p99_ms_median"] for e in summary.values()) * 1.3)
    figure.text(0.01, 0.01, _caption(document), fontsize=8, color="#555")
    figure.subplots_adjust(bottom=0.18)
    latency = _save(figure, folder / f"{kind}-latency.svg")
    return [throughput, latency]


def scale_charts(document: dict, folder: Path) -> list[Path]:
    """One small chart per measure, against the tenant count, a line per strategy."""
    measures = document["measures"]
    rows = document["rows"]
    paths = []
    for key, label in measures.items():
        figure, axes = plt.subplots(figsize=(5.2, 3.4))
        for strategy in sorted({r["strategy"] for r in rows}):
            mine = sorted(
                (r for r in rows if r["strategy"] == strategy and r.get(key) is not None),
                key=lambda r: r["tenants"],
            )
            if mine:
                axes.plot(
                    [r["tenants"] for r in mine],
                    [r[key] for r in mine],
                    marker="o",
                    label=strategy,
                    color=COLOURS.get(strategy),
                )
        axes.set_xscale("log")
        axes.set_xlabel("tenants")
        axes.set_title(label, loc="left", fontsize=11)
        axes.spines[["top", "right"]].set_visible(False)
        axes.legend(frameon=False, fontsize=9)
        paths.append(_save(figure, folder / f"scale-{key.replace('_', '-')}.svg"))
    return paths


def update_readme(readme: Path, name: str, text: str) -> bool:
    """Replace what stands between ``<!-- name:start -->`` and ``<!-- name:end -->``."""
    if not readme.exists():
        return False
    content = readme.read_text()
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(\n<!-- {name}:end -->)", re.S)
    if not pattern.search(content):
        return False
    readme.write_text(pattern.sub(lambda m: m.group(1) + text + m.group(2), content))
    return True


CHARTS = {"bench": bench_charts, "bench-citus": bench_charts, "bench-scale": scale_charts}


def draw(document: dict, figures: Path, readme: Path) -> list[str]:
    """Draw the charts, keep the slides' copy, write the README's table; say what was done."""
    from bench.tables import TABLES, markdown, shown, write_latest

    kind = document["kind"]
    done = [f"Chart: {shown(figure)}" for figure in CHARTS[kind](document, figures)]
    done.append(f"Latest results (the slides' table): {shown(write_latest(document, figures))}")
    if update_readme(readme, kind, markdown(TABLES[kind](document))):
        done.append(f"Updated the table in {readme.name}")
    return done


def main(argv: list[str] | None = None) -> int:
    from shared.env import ROOT

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("document", type=Path, help="a results document (results/*.json)")
    parser.add_argument("--figures", type=Path, default=ROOT / "presentation" / "figures")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.document.read_text())
    except (OSError, ValueError) as exc:
        parser.error(f"cannot read {args.document}: {exc}")
    if document.get("kind") not in CHARTS:
        parser.error(f"{args.document} is not a results document of make bench or bench-scale")
    for line in draw(document, args.figures, args.readme):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
