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


def bench_charts(document: dict, folder: Path) -> list[Path]:
    summary = document["summary"]
    names = list(summary)
    colours = [COLOURS.get(n, "#555") for n in names]

    figure, axes = plt.subplots(figsize=(8, 4.2))
    medians = [summary[n]["rps_median"] for n in names]
    spread = [
        [summary[n]["rps_median"] - summary[n]["rps_min"] for n in names],
        [summary[n]["rps_max"] - summary[n]["rps_median"] for n in names],
    ]
    bars = axes.bar(names, medians, color=colours, yerr=spread, capsize=6)
    axes.bar_label(bars, labels=[f"{v:.0f}" for v in medians], padding=8)
    axes.set_ylabel("requests/s (median, min-max over rounds)")
    axes.set_title("Subtask list: throughput", loc="left")
    axes.set_ylim(0, max(medians) * 1.25 if medians else 1)
    axes.spines[["top", "right"]].set_visible(False)
    figure.text(0.01, 0.01, _caption(document), fontsize=8, color="#555")
    figure.subplots_adjust(bottom=0.18)
    throughput = _save(figure, folder / "bench-throughput.svg")

    figure, axes = plt.subplots(figsize=(8, 4.2))
    width = 0.26
    for i, (key, label) in enumerate((("p50", "p50"), ("p95", "p95"), ("p99", "p99"))):
        values = [summary[n][f"{key}_ms_median"] for n in names]
        positions = [x + (i - 1) * width for x in range(len(names))]
        axes.bar(positions, values, width, label=label, color=colours, alpha=0.45 + 0.25 * i)
    axes.set_xticks(range(len(names)), names)
    axes.set_ylabel("latency, ms (median over rounds)")
    axes.set_title("Subtask list: latency p50 · p95 · p99", loc="left")
    axes.legend(frameon=False)
    axes.spines[["top", "right"]].set_visible(False)
    figure.text(0.01, 0.01, _caption(document), fontsize=8, color="#555")
    figure.subplots_adjust(bottom=0.18)
    latency = _save(figure, folder / "bench-latency.svg")
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


CHARTS = {"bench": bench_charts, "bench-scale": scale_charts}


def draw(document: dict, figures: Path, readme: Path) -> None:
    from bench.common import say, shown
    from bench.tables import TABLES, markdown, write_latest

    kind = document["kind"]
    for figure in CHARTS[kind](document, figures):
        say(f"Chart: {shown(figure)}")
    say(f"Latest results (the slides' table): {shown(write_latest(document, figures))}")
    if update_readme(readme, kind, markdown(TABLES[kind](document))):
        say(f"Updated the table in {readme.name}")


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
    draw(document, args.figures, args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
