"""log.stats(), log.health() and the evidence bundle, through the API and the CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from comply_lab import AuditLogger, InvalidQueryError, Log, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key, public_key_pem
from comply_lab.lab import plots
from comply_lab.sample import write_sample

KEY = generate_signing_key()
END = datetime(2026, 1, 31, tzinfo=UTC)


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    path = tmp_path_factory.mktemp("log")
    write_sample(
        lambda c: AuditLogger(FileStorage(path, format="parquet", signing_key=KEY), clock=c),
        2000,
        10,
        end=END,
    ).close()
    return open_log(path, progress=False)


class TestLogStats:
    def test_stats_follow_the_selection(self, log: Log):
        """log.stats() computes over exactly the entries selected."""
        selection = log.stats("2026-01-25", "2026-01-27", model="gpt-4o")
        frame = log.entries("2026-01-25", "2026-01-27", model="gpt-4o")
        assert selection.safety()["entries"][0] == len(frame)
        assert set(selection.latency(by="model")["model"]) == {"gpt-4o"}
        assert "metadata" in selection.frame.columns
        assert "input_hash" not in selection.frame.columns
        assert repr(selection).startswith(f"Stats({len(frame):,} entries")

    def test_plot_by_name(self, log: Log):
        """Plots are reachable by name; an unknown name lists the valid ones."""
        assert log.stats().plot("volume_timeline").get_suptitle() == "Logging volume and gaps"
        with pytest.raises(InvalidQueryError, match="plots are: latency_distribution"):
            log.stats().plot("pie")

    def test_health_uses_the_whole_log_total(self, log: Log):
        """log.health(): total from the log, volume and failures from the last hour."""
        last = log.entries(columns=["timestamp"])["timestamp"].max().to_pydatetime()
        metrics = log.health(now=last).iloc[0]
        assert metrics["total_entries"] == 2000
        assert metrics["hourly_volume"] == len(
            log.entries(last - pd.Timedelta(hours=1), last, columns=["id"])
        )


class TestBundle:
    def test_bundle_contents_and_manifest(self, log: Log, tmp_path: Path):
        """The bundle holds report, entries, verification, statistics, plots and a manifest."""
        out = log.evidence_bundle(
            tmp_path / "bundle",
            "2026-01-25",
            "2026-01-30",
            public_key=public_key_pem(KEY),
            title="January review",
        )
        assert pq.read_table(out / "entries.parquet").num_rows == log.count(
            "2026-01-25", "2026-01-30"
        )
        verification = json.loads((out / "verification.json").read_text())
        assert verification["summary"]["ok"] is True
        assert verification["summary"]["signatures"] == "checked"
        report = (out / "report.html").read_text()
        assert "January review" in report and "OK:" in report
        assert len(list((out / "plots").glob("*.png"))) == len(plots.ALL)
        assert (out / "statistics" / "safety_by_model.csv").exists()
        manifest = json.loads((out / "MANIFEST.json").read_text())
        listed = {f["path"]: f for f in manifest["files"]}
        on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
        assert set(listed) == on_disk - {"MANIFEST.json", "SHA256SUMS"}  # SHA256SUMS covers both
        for name, item in listed.items():
            assert hashlib.sha256((out / name).read_bytes()).hexdigest() == item["sha256"]

    def test_never_overwrites(self, log: Log, tmp_path: Path):
        """A non-empty target folder is refused."""
        (tmp_path / "keep.txt").write_text("x")
        with pytest.raises(InvalidQueryError, match="is not empty"):
            log.evidence_bundle(tmp_path)
        assert (tmp_path / "keep.txt").read_text() == "x"

    @pytest.mark.slow  # several CLI subprocesses
    def test_cli(self, log: Log, tmp_path: Path):
        """`comply-lab evidence` writes the bundle and says where."""
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "comply_lab.cli",
                "evidence",
                str(log.storage.path),  # type: ignore[attr-defined]
                str(tmp_path / "b"),
                "--start",
                "2026-01-29",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "report.html" in done.stdout
        assert (tmp_path / "b" / "MANIFEST.json").exists()


def test_evidence_of_a_log_that_fails_verification_exits_1(tmp_path: Path):
    """The bundle is written (it says FAILED and why), and the exit code says it too."""
    from click.testing import CliRunner

    from comply_lab.cli import main

    key = generate_signing_key()
    path = tmp_path / "log"
    with AuditLogger(FileStorage(path, format="jsonl", signing_key=key)) as logger:
        for i in range(3):
            logger.log_sync(input=f"q{i}", output="a", model="gpt-4o")
    day_file = next(path.glob("audit_*.jsonl"))
    day_file.write_bytes(day_file.read_bytes().replace(b'"gpt-4o"', b'"gpt-5"', 1))
    (tmp_path / "writer.pub").write_bytes(public_key_pem(key))
    args = [
        "evidence",
        str(path),
        str(tmp_path / "b"),
        "--public-key",
        str(tmp_path / "writer.pub"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("default")  # readers warn that they left the edited line out
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert "do not give their own hash" in result.output
    summary = json.loads((tmp_path / "b" / "verification.json").read_text())["summary"]
    assert summary["verdict"] == "FAILED"


def test_the_report_says_how_to_check_the_bundle_it_is_in(tmp_path: Path):
    """A signed bundle's report gives the offline checks; an unsigned one says it has none."""
    key = generate_signing_key()
    storage = FileStorage(tmp_path / "log", format="parquet", signing_key=key)
    write_sample(lambda c: AuditLogger(storage, clock=c), 60, 2).close()
    log = open_log(tmp_path / "log")
    signed = log.evidence_bundle(tmp_path / "signed", signing_key=key)
    unsigned = log.evidence_bundle(tmp_path / "unsigned", public_key=key.public_key())
    assert "verify_bundle.py" in (signed / "report.html").read_text()
    page = (unsigned / "report.html").read_text()
    assert "verify_bundle.py" not in page and "no signature and no proofs" in page
    assert not (unsigned / "SHA256SUMS.sig").exists()
