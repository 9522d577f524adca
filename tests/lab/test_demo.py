"""The demo and the benchmark scripts run end to end on small data."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from comply_lab import demo
from comply_lab.lab import plots
from comply_lab.sample import interactions
from tests.conftest import ROOT
from tests.hermetic import real_clock_env

pytestmark = pytest.mark.slow  # runs the demo and the benchmark smoke test


class TestSample:
    def test_same_seed_same_data(self):
        """The workload is reproducible from its seed."""
        end = datetime(2026, 2, 1, tzinfo=UTC)
        first = [(i.when, i.fields) for i in interactions(300, 3, end=end, seed=1)]
        assert first == [(i.when, i.fields) for i in interactions(300, 3, end=end, seed=1)]
        assert first != [(i.when, i.fields) for i in interactions(300, 3, end=end, seed=2)]

    def test_realistic_mix(self):
        """Several providers, about 8% blocked with detectors, times in order."""
        items = list(interactions(5000, 30, seed=3))
        assert len(items) == 5000
        assert [i.when for i in items] == sorted(i.when for i in items)
        blocked = [i for i in items if not i.fields["safety_passed"]]
        assert 0.06 < len(blocked) / len(items) < 0.10
        assert all(i.fields["detectors_triggered"] and i.fields["block_reason"] for i in blocked)
        assert len({i.fields["provider"] for i in items}) >= 4
        assert len({i.fields["conversation_id"] for i in items}) < len(items)


class TestDemo:
    def test_demo_logs_reads_and_summarizes(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ):
        """The demo writes a log, reads every entry back and prints the summary."""
        assert demo.main(["--out", str(tmp_path / "d"), "--entries", "3000", "--days", "5"]) == 0
        out = capsys.readouterr().out
        assert "read back 3,000 entries" in out
        assert "verified: OK: 3,000 entries" in out
        assert "checkpoint matched" in out
        assert "safety failures" in out
        assert "latency p95" in out
        assert list((tmp_path / "d" / "log").glob("date=*/*.parquet"))
        assert (tmp_path / "d" / "checkpoint.txt").exists()
        assert len(list((tmp_path / "d" / "plots").glob("*.png"))) == len(plots.ALL)
        assert (tmp_path / "d" / "evidence" / "report.html").exists()
        assert "evidence bundle in" in out
        # A second run replaces its own earlier output.
        assert demo.main(["--out", str(tmp_path / "d"), "--entries", "500", "--days", "2"]) == 0

    def test_demo_never_deletes_foreign_directories(self, tmp_path: Path):
        """An existing directory the demo did not make is left alone."""
        (tmp_path / "precious.txt").write_text("keep me")
        with pytest.raises(SystemExit, match="was not made by the demo"):
            demo.main(["--out", str(tmp_path), "--entries", "10"])
        assert (tmp_path / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("script", "args", "first"),
    [
        (
            "log_throughput",
            ["--entries", "300", "--query-entries", "3000"],
            "awaited log(), hash-only",
        ),
        ("query_scale", ["--entries", "4000"], "entries(), 1 hour of 4,000"),
        ("verify_speed", ["--entries", "3000"], "verify(), 3,000 entries, signed"),
        ("s3_cost", ["--entries", "300"], "write requests for 300 entries"),
        ("crypto_speed", ["--entries", "300"], "log_sync(), AES-GCM key ring vs hash-only"),
        (
            "retention_speed",
            ["--entries", "3000", "--baseline-entries", "300"],
            "cleanup_expired, 10 of 30 days, parquet",
        ),
        ("scale", ["--entries", "3000"], "one writer, log_sync"),
        ("explorer_speed", ["--entries", "3000"], "open: first page, newest first"),
    ],
)
def test_bench_scripts_run(script: str, args: list[str], first: str, tmp_path: Path):
    """Each benchmark runs on small data and writes figures beside their baselines."""
    subprocess.run(
        [sys.executable, f"bench/{script}.py", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
        env={**real_clock_env(), "COMPLY_LAB_BENCH_OUT": str(tmp_path)},
    )
    results = json.loads((tmp_path / f"{script}.json").read_text())
    assert results[0]["workload"] == first
    assert all(r["ours"] > 0 and r["baseline"] > 0 for r in results)


def test_side_by_side_benchmark_runs(tmp_path: Path) -> None:
    """bench/versus.py runs both tools on small data and writes the results table."""
    results = tmp_path / "RESULTS.md"
    subprocess.run(
        [
            sys.executable,
            "bench/versus.py",
            "--entries",
            "2000",
            "--log-entries",
            "200",
            "--bound",
            "180",
            "--results",
            str(results),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
        env={**real_clock_env(), "COMPLY_LAB_BENCH_OUT": str(tmp_path)},
    )
    rows = json.loads((tmp_path / "versus.json").read_text())["rows"]
    assert rows[0]["workload"].startswith("awaited log(), hash-only")
    assert all(r["ours"] > 0 for r in rows)
    assert all(
        r["original"] and r["original"] > 0 for r in rows if "verification" not in r["workload"]
    )
    text = results.read_text()
    assert "| workload | original | comply_lab |" in text and "## Limits" in text


def test_bench_compare_flags_figures_more_than_twice_worse(tmp_path: Path):
    """compare.py collects a run and flags ratios that fell by more than 2x, and only those."""
    out = tmp_path / "out"
    out.mkdir()
    rows = [
        {"workload": "steady", "unit": "s", "ours": 1.0, "baseline": 10.0, "ratio": 10.0},
        {"workload": "slower", "unit": "s", "ours": 3.0, "baseline": 10.0, "ratio": 3.3},
    ]
    (out / "speed.json").write_text(json.dumps(rows))
    (out / "versus.json").write_text(
        json.dumps({"rows": [{"workload": "vs", "ours": 5.0, "original": 1.0, "ratio": 5.0}]})
    )
    script = [sys.executable, str(ROOT / "bench" / "compare.py")]
    subprocess.run([*script, "collect", "--out", str(out)], check=True, capture_output=True)
    new = json.loads((out / "results.json").read_text())
    assert [f["workload"] for f in new["figures"]] == ["steady", "slower", "vs"]
    old = json.loads(json.dumps(new))
    for figure in old["figures"]:
        figure["ratio"] = {"steady": 15.0, "slower": 10.0, "vs": 5.0}[figure["workload"]]
    (tmp_path / "old.json").write_text(json.dumps(old))
    done = subprocess.run(
        [*script, str(tmp_path / "old.json"), str(out / "results.json")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "speed: slower: ratio 10 -> 3.3" in done.stdout
    assert "steady" not in done.stdout.split("worse than before:")[1]
    same = subprocess.run(
        [*script, str(out / "results.json"), str(out / "results.json")],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0 and "no figure more than 2x worse" in same.stdout
