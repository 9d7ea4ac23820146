"""The benchmark harnesses, run tiny so that they cannot rot (what they measure is not asserted:
speed is measured by `make bench`, never in tests)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from bench.tables import read_latest
from shared.env import ROOT


def children_named(*names: str) -> list[str]:
    """Our descendants still running with one of these names (an exited process that its
    parent has yet to reap holds nothing, and has no command line to read)."""
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            line = " ".join(process.cmdline())
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if any(n in line for n in names):
            found.append(line)
    return found


def run(module: str, tmp_path: Path, *args: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", module, "--results", str(tmp_path / "results"),
         "--figures", str(tmp_path / "figures"), "--readme", str(tmp_path / "README.md"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (document,) = (tmp_path / "results").glob("*.json")
    return json.loads(document.read_text()), result.stdout


def test_make_bench_in_miniature(tmp_path):
    (tmp_path / "README.md").write_text("before\n<!-- bench:start -->\nold\n<!-- bench:end -->\n")
    document, out = run(
        "bench.compare", tmp_path,
        "--accounts", "3", "--users", "2", "--spawn-rate", "2", "--duration", "3", "--rounds", "1",
        "--tenants", "2,3",
    )  # fmt: skip
    assert document["targets"] == [
        "rls", "rls-control", "multidb", "schemas", "ceiling", "baseline-shared", "baseline-multidb"
    ]  # fmt: skip
    assert {r["target"] for r in document["rounds"]} == {
        f"{target} @{count}" for target in document["targets"] for count in (2, 3)
    }
    for row in document["rounds"]:
        assert row["requests"] > 0 and row["checked"] == row["requests"], row
        assert row["failures"] == 0 and row["wrong_rows"] == 0, row
    assert document["versions"]["postgresql"] and document["machine"]["cores"]
    assert "| rls-control @2 |" in out
    # Either way round: in a run this short rls may well beat its control.
    assert re.search(r"Row-level security costs [\d.]+%|rls served [\d.]+% more", out), out
    assert re.search(r"multidb / baseline-multidb: [\d.]+ at 2 tenants, [\d.]+ at 3 tenants", out)
    readme = (tmp_path / "README.md").read_text()
    assert "old" not in readme and "| ceiling @3 |" in readme
    for name in ("bench-throughput.svg", "bench-latency.svg"):
        assert (tmp_path / "figures" / name).read_text().startswith("<?xml")
    assert not children_named("gunicorn", "locust", "postgres")
    # The slides' table: a row per target, a column per busy-tenant count.
    slides = read_latest(tmp_path / "figures", "bench")
    assert slides is not None and slides.header == ["target", "2 tenants", "3 tenants"]
    assert [row[0] for row in slides.rows] == document["targets"]
    # A kept run draws the README's table again.
    (tmp_path / "README.md").write_text("<!-- bench:start -->\nold\n<!-- bench:end -->\n")
    (kept,) = (tmp_path / "results").glob("*.json")
    redraw = subprocess.run(
        [sys.executable, "-m", "bench.report", str(kept), "--figures", str(tmp_path / "figures"),
         "--readme", str(tmp_path / "README.md")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert redraw.returncode == 0, redraw.stderr[-2000:]
    assert "| ceiling @3 |" in (tmp_path / "README.md").read_text()


def test_make_bench_scale_in_miniature(tmp_path):
    document, _ = run(
        "bench.scale", tmp_path,
        "--counts", "1,2", "--strategies", "multidb,schemas", "--duration", "2", "--users", "2",
        "--rounds", "2",
    )  # fmt: skip
    # Each strategy and count in a database of its own, side by side, sampled in both rounds.
    assert [(r["strategy"], r["tenants"]) for r in document["rows"]] == [
        ("multidb", 1),
        ("schemas", 1),
        ("multidb", 2),
        ("schemas", 2),
    ]
    for row in document["rows"]:
        assert row["connections"] >= 1 and row["catalogue_rows"] > 0 and row["rps"] > 0
        assert row["failures"] == 0 and row["wrong_rows"] == 0
        assert len(row["samples"]) == 2 and row["rps_min"] <= row["rps"] <= row["rps_max"]
    assert [v.split(" at ")[0] for v in document["verdicts"]] == ["multidb", "schemas"]
    assert all(re.search(r"(shown|refuted|undecided)", v) for v in document["verdicts"])
    assert (tmp_path / "figures" / "scale-p95-ms.svg").exists()
    assert not children_named("gunicorn", "locust", "postgres")


def test_ctrl_c_stops_everything_the_run_started(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.compare", "--accounts", "2", "--users", "2",
         "--duration", "60", "--rounds", "1", "--targets", "rls",
         "--results", str(tmp_path / "results"), "--no-report"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )  # fmt: skip
    try:
        for line in process.stdout:  # under load: a server and locust are running
            if "round 1/1" in line:
                break
        assert children_named("gunicorn") and children_named("locust")
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err[-2000:]
    assert "interrupted: every server and cluster this run started is stopped" in err
    assert not children_named("gunicorn", "locust", "postgres")
    assert not (tmp_path / "results").exists()


CHECK = """
import json, sys
from types import SimpleNamespace
from bench import locustfile as lf
tenant = lf.TENANTS[0]
def page(account, names):
    rows = "".join(
        f'<tr><td>{n}</td><td>t</td><td>p</td><td class="account">{account}</td></tr>'
        for n in names
    )
    return SimpleNamespace(status_code=200, text=f"<table>{rows}</table>")
print(json.dumps([
    lf.check(page("Own", ["a", "b"]), tenant, 1),
    lf.check(page("Other", ["a", "b"]), tenant, 1),
    lf.check(page("Own", ["a", "z"]), tenant, 1),
    lf.check(page("Own", ["a"]), tenant, 1),
    lf.check(SimpleNamespace(status_code=503, text=""), tenant, 1),
]))
"""


def test_the_load_checks_catch_a_row_of_another_tenant(tmp_path):
    tenants = tmp_path / "tenants.json"
    tenants.write_text(
        json.dumps([{"slug": "t-1", "name": "Own", "subtasks": 2, "subtask_names": ["a", "b"]}])
    )
    result = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, "TENANCY_BENCH_TENANTS": str(tenants), "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    ok, other_account, foreign_row, missing_row, status = json.loads(result.stdout)
    assert ok is None
    assert "was shown rows of ['Other']" in other_account
    assert "subtasks it does not have: ['z']" in foreign_row
    assert "1 rows, expected 2" in missing_row
    assert status == "status 503"


def test_make_bench_tasks_in_miniature(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.background", "--results", str(tmp_path / "results"),
         "--accounts", "3", "--rounds", "1", "--duration", "2", "--users", "2",
         "--spawn-rate", "2", "--tasks", "20"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = (tmp_path / "results").glob("tasks-*.json")
    document = json.loads(path.read_text())
    assert set(document["probes"]) == {"rls", "schemas", "multidb"}
    for (probe,) in document["probes"].values():
        assert probe["worker_tasks"] == 20 and probe["worker_failed"] == 0
        assert set(probe["noisy_codes"]) == {503}
        assert probe["others_codes"] == [200]
    assert set(document["limits"]) == {"rls", "schemas"}
    assert "| rls |" in result.stdout and "req/s with limits" in result.stdout


def test_make_bench_with_citus_in_miniature(tmp_path):
    from shared.citus import installed

    if not installed():
        import pytest

        pytest.fail("Citus is NOT INSTALLED: make citus-install CITUS_SOURCE=... (.ci/run does)")
    (tmp_path / "README.md").write_text(
        "<!-- bench-citus:start -->\nold\n<!-- bench-citus:end -->\n"
    )
    document, out = run(
        "bench.compare", tmp_path, "--citus", "--targets", "rls,schemas,rls-citus,schemas-citus",
        "--accounts", "4", "--users", "2", "--spawn-rate", "2", "--duration", "3", "--rounds", "1",
        "--tenants", "4",
    )  # fmt: skip
    assert document["kind"] == "bench-citus"
    for row in document["rounds"]:
        assert row["requests"] > 0 and row["checked"] == row["requests"], row
        assert row["failures"] == 0 and row["wrong_rows"] == 0, row
    assert re.search(r"rls-citus served \d+% of the requests/s rls served", out), out
    # Every tenant on a worker of the two, and where a page view's time goes on each.
    for target in ("rls-citus", "schemas-citus"):
        assert sum(document["placement"][target].values()) == 4
        assert len(document["placement"][target]) <= 2
        hop = document["where_time_goes"][target]
        assert hop["views"] > 0 and 0 < hop["worker_ms"] <= hop["execution_ms"]
        assert "Task Count: 1" in hop["plan"]
    assert "coordinator's hop is the rest" in out
    assert "old" not in (tmp_path / "README.md").read_text()
    assert (tmp_path / "figures" / "bench-citus-throughput.svg").read_text().startswith("<?xml")
    assert not children_named("gunicorn", "locust", "postgres")
