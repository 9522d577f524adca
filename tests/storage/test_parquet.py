"""Parquet sealing: layout, manifests, crash safety, compaction and outside readers."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from comply_lab import AuditLogger, CorruptLineWarning, IntegrityError, open_log
from comply_lab.audit import FileStorage
from comply_lab.model.entry import GENESIS_HASH, entry_hash
from comply_lab.storage.arrow import SCHEMA
from comply_lab.storage.compaction import compact
from comply_lab.storage.manifest import read_records, record_hash
from tests.conftest import FakeClock, original_record

T0 = datetime(2026, 1, 29, 10, 30, tzinfo=UTC)


def _write(
    path: Path, clock: FakeClock, days: int = 3, per_day: int = 40, **options: object
) -> list[str]:
    logger = AuditLogger(FileStorage(path, fsync="never", **options), clock=clock)  # type: ignore[arg-type]
    ids = []
    for day in range(days):
        clock.now = T0 + timedelta(days=day)
        for i in range(per_day):
            clock.advance(seconds=7)
            ids.append(
                logger.log_sync(
                    input=f"q{day}-{i}",
                    output="a",
                    provider=["openai", "anthropic"][i % 2],
                    model="m",
                    safety_passed=i % 5 != 0,
                    latency_ms=float(i),
                    detectors_triggered=["pii"] if i % 5 == 0 else [],
                    input_tokens=i,
                    metadata={"user": f"u{i % 3}"},
                )
            )
    logger.close()
    return ids


def _all_ids(path: Path) -> list[str]:
    return [e.id for day in FileStorage(path).days() for e in FileStorage(path).read_day(day)]


class TestSealing:
    def test_close_seals_into_hive_layout(self, tmp_path: Path, clock: FakeClock):
        """After close(), days are date=YYYY-MM-DD/part-*.parquet and no JSONL remains."""
        ids = _write(tmp_path, clock, format="parquet")
        names = sorted(
            p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()
        )
        assert names == [
            "_heartbeat.jsonl",
            "_manifest.jsonl",
            "_sealed/audit_20260129.jsonl",
            "_sealed/audit_20260130.jsonl",
            "_sealed/audit_20260131.jsonl",
            "date=2026-01-29/part-20260129-000.parquet",
            "date=2026-01-30/part-20260130-000.parquet",
            "date=2026-01-31/part-20260131-000.parquet",
        ]
        assert sorted(_all_ids(tmp_path)) == sorted(ids)

    def test_schema_is_the_declared_one(self, tmp_path: Path, clock: FakeClock):
        """Sealed files carry exactly the Arrow schema, zstd-compressed, tz-aware."""
        _write(tmp_path, clock, days=1, format="parquet")
        (part,) = tmp_path.glob("date=*/*.parquet")
        meta = pq.ParquetFile(part)
        assert meta.schema_arrow.equals(SCHEMA, check_metadata=False)
        assert meta.schema_arrow.field("timestamp").type == pa.timestamp("us", tz="UTC")
        assert meta.metadata.row_group(0).column(0).compression == "ZSTD"

    def test_manifest_records_and_chains(self, tmp_path: Path, clock: FakeClock):
        """One manifest record per part, with count, range, digest, and a hash chain."""
        _write(tmp_path, clock, format="parquet")
        records = read_records(tmp_path)
        assert [r["segment"] for r in records] == sorted(
            p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("date=*/*.parquet")
        )
        assert records[0]["prev_record_hash"] == GENESIS_HASH
        for before, after in itertools.pairwise(records):
            assert after["prev_record_hash"] == before["record_hash"]
        for record in records:
            assert record["record_hash"] == record_hash(record)
            part = tmp_path / record["segment"]
            assert record["sha256"] == hashlib.sha256(part.read_bytes()).hexdigest()
            assert record["entries"] == pq.ParquetFile(part).metadata.num_rows == 40
            assert record["source"].startswith("audit_")

    def test_rotation_and_day_change_seal_in_the_background(self, tmp_path: Path, clock: FakeClock):
        """Leaving a segment (rotation, new day) seals it while logging goes on."""
        storage = FileStorage(tmp_path, rotation_size_mb=8000 / 2**20, format="parquet")
        logger = AuditLogger(storage, clock=clock)
        for _ in range(30):
            logger.log_sync(input="x" * 200, output="y")
        clock.advance(days=1)
        logger.log_sync(input="next day", output="")
        assert storage._sealer is not None
        storage._sealer.drain()
        sealed = list(tmp_path.glob("date=2026-01-29/*.parquet"))
        assert len(sealed) >= 2
        assert list(tmp_path.glob("audit_20260129*.jsonl")) == []
        assert (tmp_path / "audit_20260130.jsonl").exists()  # still being written
        assert open_log(tmp_path).count() == 31
        logger.close()

    def test_segment_in_use_is_not_sealed(self, tmp_path: Path, clock: FakeClock):
        """A segment another writer holds open is skipped and stays readable."""
        writer = AuditLogger(FileStorage(tmp_path, format="parquet"), clock=clock)
        writer.log_sync(input="held", output="")
        report = FileStorage(tmp_path).seal()
        assert report.in_use == ["audit_20260129.jsonl"]
        assert report.sealed == []
        writer.log_sync(input="still writing", output="")
        writer.close()
        assert open_log(tmp_path).count() == 2
        assert list(tmp_path.glob("audit_*.jsonl")) == []

    def test_writers_after_a_seal_start_a_new_segment(self, tmp_path: Path, clock: FakeClock):
        """A day sealed while no one writes gets new entries in its next segment."""
        first = AuditLogger(FileStorage(tmp_path, format="parquet"), clock=clock)
        first.log_sync(input="one", output="")
        first.close()
        second = AuditLogger(FileStorage(tmp_path, format="parquet"), clock=clock)
        second.log_sync(input="two", output="")
        assert (tmp_path / "audit_20260129_001.jsonl").exists()
        second.close()
        assert sorted(p.name for p in tmp_path.glob("date=*/*")) == [
            "part-20260129-000.parquet",
            "part-20260129-001.parquet",
        ]
        assert open_log(tmp_path).count() == 2

    def test_damaged_lines_are_quarantined_not_dropped(self, tmp_path: Path, clock: FakeClock):
        """Sealing a segment with a torn line keeps the raw bytes and reports them."""
        ids = _write(tmp_path, clock, days=1)
        segment = tmp_path / "audit_20260129.jsonl"
        original = segment.read_bytes() + b'{"id": "torn'
        segment.write_bytes(original)
        with pytest.warns(CorruptLineWarning, match="_quarantine"):
            report = compact(tmp_path)
        assert report.damaged_lines == 1
        assert (tmp_path / "_quarantine" / "audit_20260129.jsonl").read_bytes() == original
        assert read_records(tmp_path)[0]["damaged_lines"] == 1
        assert sorted(_all_ids(tmp_path)) == sorted(ids)

    def test_mismatching_existing_part_keeps_the_source(self, tmp_path: Path, clock: FakeClock):
        """If a part already in place does not match its source, sealing stops, keeping both."""
        _write(tmp_path, clock, days=1)
        other = tmp_path / "other"
        _write(other, FakeClock(T0), days=1, per_day=3)
        compact(other)
        (tmp_path / "date=2026-01-29").mkdir()
        shutil.copy(
            other / "date=2026-01-29/part-20260129-000.parquet", tmp_path / "date=2026-01-29"
        )
        with pytest.raises(IntegrityError, match="does not hold exactly the 40 entries"):
            compact(tmp_path)
        assert (tmp_path / "audit_20260129.jsonl").exists()


class TestOutsideReaders:
    def test_pandas_duckdb_and_pyarrow_read_the_same_rows(self, tmp_path: Path, clock: FakeClock):
        """The dataset opens without comply_lab in pandas, DuckDB and pyarrow alike."""
        _write(tmp_path, clock, format="parquet")
        ours = open_log(tmp_path).entries().sort_values("id").reset_index(drop=True)
        by_pandas = pd.read_parquet(tmp_path).sort_values("id").reset_index(drop=True)
        by_duckdb = (
            duckdb.sql(
                f"select * from read_parquet('{tmp_path}/*/*.parquet', hive_partitioning=true) "
                "order by id"
            )
            .to_arrow_table()
            .to_pandas()
        )
        by_arrow = ds.dataset(tmp_path, format="parquet", partitioning="hive").to_table()
        assert len(ours) == len(by_pandas) == len(by_duckdb) == by_arrow.num_rows == 120
        assert list(by_pandas["id"]) == list(ours["id"]) == list(by_duckdb["id"])
        assert (by_pandas["timestamp"] == ours["timestamp"]).all()
        assert str(by_duckdb["timestamp"].dt.tz) in ("UTC", "Etc/UTC")
        assert (by_duckdb["timestamp"].dt.tz_convert("UTC") == ours["timestamp"]).all()
        assert set(by_pandas["date"].astype(str)) == {"2026-01-29", "2026-01-30", "2026-01-31"}
        assert json.loads(by_pandas["metadata"][0]) == json.loads(ours["metadata"][0])

    def test_hashes_recompute_from_parquet(self, tmp_path: Path, clock: FakeClock):
        """Every row read from Parquet still matches its entry_hash."""
        _write(tmp_path, clock, days=1, format="parquet")
        entries = list(FileStorage(tmp_path).read_day(T0.date()))
        assert len(entries) == 40
        assert all(e.entry_hash == entry_hash(e.record()) for e in entries)


class TestCompact:
    def test_cli_compacts_original_tool_logs(self, tmp_path: Path):
        """`comply-lab compact` turns the original tool's files into verified Parquet."""
        records = []
        for day, name in (
            (28, "audit_20260128.jsonl"),
            (28, "audit_20260128_001.jsonl"),
            (29, "audit_20260129.jsonl"),
        ):
            lines = [
                original_record(datetime(2026, 1, day, 9, i), f"q{day}{i}{name}") for i in range(5)
            ]
            records += lines
            (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in lines))
        before = {r["id"]: r for r in records}
        done = subprocess.run(
            [sys.executable, "-m", "comply_lab.cli", "compact", str(tmp_path), "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        report = json.loads(done.stdout)
        assert report["entries"] == 15
        assert len(report["sealed"]) == 3
        assert list(tmp_path.glob("audit_*.jsonl")) == []
        frame = open_log(tmp_path).entries()
        assert sorted(frame["id"]) == sorted(before)
        first = frame.set_index("id").loc[records[0]["id"]]
        assert first["timestamp"] == pd.Timestamp("2026-01-28 09:00", tz="UTC")
        assert first["latency_ms"] == 150.0
        assert pd.isna(first["entry_hash"])

    def test_cli_errors_are_one_line(self, tmp_path: Path):
        """A bad path gives a one-line error and exit code 2."""
        done = subprocess.run(
            [sys.executable, "-m", "comply_lab.cli", "compact", str(tmp_path / "missing")],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2
        assert done.stderr.startswith("error: ") and "not a log directory" in done.stderr
        assert "Traceback" not in done.stderr

    def test_compacting_twice_is_harmless(self, tmp_path: Path, clock: FakeClock):
        """A second compaction finds nothing to do and changes nothing."""
        ids = _write(tmp_path, clock, days=2)
        compact(tmp_path)
        snapshot = sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*"))
        again = compact(tmp_path)
        assert (again.sealed, again.entries) == ([], 0)
        assert sorted((p.name, p.stat().st_size) for p in tmp_path.rglob("*")) == snapshot
        assert sorted(_all_ids(tmp_path)) == sorted(ids)


_SEAL_CHILD = """
import sys
import comply_lab.storage.arrow  # import everything before the clock starts
from comply_lab.storage.compaction import compact
print("ready", flush=True)
sys.stdin.readline()
compact(sys.argv[1])
print("done", flush=True)
"""


def _run_sealer(store: Path, kill_after: float | None) -> float:
    """Run compaction in a child; SIGKILL it ``kill_after`` s into sealing (None: let it end).

    Returns:
        How long the child sealed before it ended or was killed.
    """
    with subprocess.Popen(
        [sys.executable, "-c", _SEAL_CHILD, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        child.stdin.write("go\n")
        child.stdin.flush()
        if kill_after is None:
            assert child.stdout.readline().strip() == "done"
        else:
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
        child.wait()
        return time.perf_counter() - started


@pytest.mark.slow
@pytest.mark.slow
class TestCrashDuringSealing:
    def test_killing_the_sealer_anywhere_loses_and_duplicates_nothing(
        self, tmp_path: Path, clock: FakeClock
    ):
        """SIGKILL at random moments of sealing: readers see every entry once, then and after."""
        template = tmp_path / "template"
        ids = sorted(_write(template, clock, days=3, per_day=600, rotation_size_mb=0.25))
        rng = random.Random(1234)
        duration = _run_sealer(shutil.copytree(template, tmp_path / "timing"), None)
        outcomes = set()
        trials = 14
        for trial in range(trials):
            store = shutil.copytree(template, tmp_path / f"trial{trial}")
            # Stratified: trial k dies somewhere in the k-th slice of the sealing time.
            _run_sealer(store, duration * (trial + rng.random()) / trials)
            outcomes.add(len(list(store.glob("date=*/*.parquet"))))
            assert sorted(_all_ids(store)) == ids, f"trial {trial} before recovery"
            assert sorted(open_log(store).entries(columns=["id"])["id"]) == ids
            compact(store)
            assert sorted(_all_ids(store)) == ids, f"trial {trial} after recovery"
            assert list(store.glob("audit_*.jsonl")) == []
            manifest = read_records(store)
            assert len(manifest) == len(list(store.glob("date=*/*.parquet")))
            assert sum(r["entries"] for r in manifest) == len(ids)
        assert len(outcomes) >= 2  # the kills landed at different stages


def test_schema_columns_are_the_entry_fields_in_order():
    """Readers build entries positionally from the schema's columns: the orders must agree."""
    from dataclasses import fields

    from comply_lab.audit import AuditEntry
    from comply_lab.storage.arrow import COLUMNS

    assert tuple(f.name for f in fields(AuditEntry)) == COLUMNS
