"""Damaged and hostile data: every read path gives a typed error, verification reports.

A sealed Parquet part is damaged on disk (or in S3) the way disks, copies and attackers
damage files — a bad footer, a truncation, junk, a failed decompression, a column of the
wrong type, metadata that is not a JSON object, a decompression bomb — and every way of
reading the log is called: only :class:`~comply_lab.errors.ComplyLabError` escapes, reads
of the damaged part raise :class:`~comply_lab.errors.CorruptSegmentError` naming it, and
``verify`` reports instead of raising. ``COMPLY_LAB_PARQUET_FUZZ`` sets how many random
damages the fuzz test tries (200 in ``make test``; ``make fuzz`` runs 10,000).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import warnings
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from comply_lab import (
    AuditLogger,
    ComplyLabError,
    CorruptSegmentError,
    CorruptSegmentWarning,
    IntegrityWarning,
    InvalidEntryError,
    InvalidQueryError,
    open_log,
)
from comply_lab.audit import FileStorage, MemoryStorage
from comply_lab.errors import CorruptRecordError
from comply_lab.model.validate import METADATA_MAX_DEPTH, METADATA_MAX_SIZE
from comply_lab.storage import parts
from comply_lab.storage.arrow import SCHEMA, write_parquet
from comply_lab.storage.compaction import compact
from comply_lab.storage.s3 import S3Storage
from tests.conftest import FakeClock, new_bucket, original_record

T0 = datetime(2026, 1, 29, 10, 30, tzinfo=UTC)
DAY = "2026-01-29"
UNKNOWN_ID = "019c0988-5e40-7000-8000-000000000000"
"""A UUIDv7 of the damaged day that no entry has: looking it up reads the whole day."""
FUZZ_CASES = int(os.environ.get("COMPLY_LAB_PARQUET_FUZZ", "200"))


def sealed_log(root: Path, entries: int = 12, **log: Any) -> Path:
    """Log ``entries`` entries on one day into a Parquet log (sealed on close); return its part."""
    clock = FakeClock(T0)
    with AuditLogger(FileStorage(root, format="parquet", fsync="never"), clock=clock) as logger:
        for i in range(entries):
            clock.advance(minutes=1)
            logger.log_sync(input=f"q{i}", output="a", metadata={"user_id": f"u{i % 3}"}, **log)
    (part,) = root.glob("date=*/*.parquet")
    return part


def read_paths(target: Any, logger: AuditLogger) -> dict[str, Callable[[], object]]:
    """Every documented way of reading a log, by name."""
    log = open_log(target, progress=False)
    return {
        "entries": lambda: log.entries(),
        "batches": lambda: list(log.batches()),
        "metadata_keys": lambda: log.entries(metadata_keys=["user_id"]),
        "len": lambda: len(log),
        "partitions": lambda: log.partitions(),
        "get_entries": lambda: logger.get_entries_sync(DAY, DAY),
        "get_entry": lambda: logger.get_entry_sync(UNKNOWN_ID),
        "retention_plan": lambda: log.retention_plan(30, now="2026-06-01"),
        "stats": lambda: log.stats().safety(by="user_id"),
        "to_dask": lambda: log.to_dask().compute(),
    }


def _rewrite(part: Path, change: Callable[[pa.Table], pa.Table]) -> None:
    """Write the part again with its table changed (a valid file with wrong content)."""
    table = change(pq.read_table(part))
    write_parquet(table, str(part))


def _set(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    index = table.schema.get_field_index(name)
    return table.set_column(index, pa.field(name, values.type), values)


def _zero_page(data: bytes) -> bytes:
    """Zero bytes inside the first compressed data page of the ``id`` column."""
    footer = pq.read_metadata(pa.BufferReader(data))
    start = footer.row_group(0).column(0).data_page_offset + 40
    return data[:start] + bytes(32) + data[start + 32 :]


DAMAGES: dict[str, Callable[[Path], None]] = {
    "bad footer": lambda p: p.write_bytes(p.read_bytes()[:-8] + b"\xff\xff\xff\x7fPAR1"),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "junk bytes": lambda p: p.write_bytes(b"PAR1" + os.urandom(2000) + b"PAR1"),
    "failed decompression": lambda p: p.write_bytes(_zero_page(p.read_bytes())),
    "wrong-typed column": lambda p: _rewrite(
        p, lambda t: _set(t, "latency_ms", pa.array(["fast"] * t.num_rows))
    ),
    "metadata not JSON": lambda p: _rewrite(
        p, lambda t: _set(t, "metadata", pa.array(["{not json"] * t.num_rows))
    ),
    "metadata not an object": lambda p: _rewrite(
        p, lambda t: _set(t, "metadata", pa.array(["[1, 2]"] * t.num_rows))
    ),
}
# Metadata stored as text is returned as text: only reads that decode it must fail.
_DECODING_METADATA = {"get_entries", "metadata_keys", "stats"}
_READS_ROWS = {"entries", "batches", "get_entries", "stats", "to_dask", "metadata_keys"}


@pytest.mark.parametrize("damage", DAMAGES)
def test_every_read_path_gives_a_typed_error(tmp_path: Path, damage: str):
    """Reads of the damaged part raise CorruptSegmentError naming it; verify reports it."""
    part = sealed_log(tmp_path)
    DAMAGES[damage](part)
    logger = AuditLogger(FileStorage(tmp_path, format="parquet"))
    failed = {}
    for name, read in read_paths(tmp_path, logger).items():
        try:
            read()
        except ComplyLabError as err:
            failed[name] = err
        # anything else escapes and fails the test
    must_fail = _DECODING_METADATA if damage.startswith("metadata") else _READS_ROWS
    assert must_fail <= set(failed), f"{damage}: {sorted(must_fail - set(failed))} read it"
    for name, err in failed.items():
        assert isinstance(err, CorruptSegmentError | CorruptRecordError), (name, err)
        where = part.name if isinstance(err, CorruptSegmentError) else "metadata"
        assert where in str(err), (name, err)
    report = open_log(tmp_path, progress=False).verify(allow_unsigned=True)
    assert not report.ok
    assert part.name in " ".join(report.to_frame()["segment"].astype(str))


@pytest.mark.parametrize("damage", ["truncated", "wrong-typed column"])
def test_damaged_s3_objects_give_typed_errors(tmp_path: Path, s3_endpoint: str, damage: str):
    """The same on S3: the object is named, other days still read, verify reports it."""
    bucket = new_bucket(s3_endpoint)
    storage = S3Storage(bucket, "a/", endpoint_url=s3_endpoint, spool_dir=tmp_path / "spool")
    clock = FakeClock(T0)
    with AuditLogger(storage, clock=clock) as logger:
        for day in range(2):
            for i in range(4):
                logger.log_sync(input=f"q{day}{i}", output="a")
            clock.advance(days=1)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    key = next(
        o["Key"]
        for o in client.list_objects_v2(Bucket=bucket, Prefix=f"a/date={DAY}")["Contents"]
        if o["Key"].endswith(".parquet")
    )
    local = tmp_path / "part.parquet"
    local.write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    DAMAGES[damage](local)
    client.put_object(Bucket=bucket, Key=key, Body=local.read_bytes())
    log = open_log(f"s3://{bucket}/a/", progress=False)
    for read in (lambda: log.entries(DAY, DAY), lambda: list(log.batches(DAY, DAY))):
        with pytest.raises(CorruptSegmentError, match=key.removeprefix("a/")):
            read()
    with pytest.raises(CorruptSegmentError):
        AuditLogger(storage).get_entries_sync(DAY, DAY)
    assert len(log.entries("2026-01-30", "2026-01-30")) == 4
    assert not log.verify().ok


class TestSkipping:
    def test_skip_reads_the_rest_and_warns_once_listing_the_parts(self, tmp_path: Path):
        """on_corrupt='skip': other segments are read; one warning names each skipped part."""
        part = sealed_log(tmp_path)
        clock = FakeClock(datetime(2026, 1, 30, 9, tzinfo=UTC))
        with AuditLogger(FileStorage(tmp_path, format="parquet"), clock=clock) as logger:
            logger.log_sync(input="next day", output="a")
        DAMAGES["truncated"](part)
        log = open_log(tmp_path, progress=False, on_corrupt="skip")
        with pytest.warns(CorruptSegmentWarning, match=part.name) as caught:
            frame = log.entries()
        assert len(caught) == 1 and "1 damaged segment" in str(caught[0].message)
        assert len(frame) == 1
        with pytest.warns(CorruptSegmentWarning):
            assert sum(b.num_rows for b in log.batches()) == 1
        with pytest.warns(CorruptSegmentWarning):
            assert len(log.to_dask().compute()) == 1
        with pytest.warns(CorruptSegmentWarning):
            assert log.stats().frame.shape[0] == 1
        with pytest.raises(CorruptSegmentError):
            open_log(tmp_path, progress=False).entries()
        assert not log.verify().ok  # verification never skips

    def test_an_unknown_choice_is_refused(self, tmp_path: Path):
        with pytest.raises(InvalidQueryError, match="on_corrupt must be 'raise' or 'skip'"):
            open_log(tmp_path, on_corrupt="ignore")  # type: ignore[arg-type]

    @pytest.mark.slow  # several CLI subprocesses
    def test_cli_skips_on_request(self, tmp_path: Path):
        """``comply-lab entries --on-corrupt skip`` prints the rest and warns on stderr."""
        part = sealed_log(tmp_path)
        DAMAGES["junk bytes"](part)
        cli = [sys.executable, "-m", "comply_lab.cli"]
        raised = subprocess.run(
            [*cli, "entries", str(tmp_path)],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        assert raised.returncode == 1 and part.name in raised.stderr
        assert "Traceback" not in raised.stderr
        skipped = subprocess.run(
            [*cli, "entries", str(tmp_path), "--on-corrupt", "skip"], capture_output=True, text=True
        )
        assert skipped.returncode == 0, skipped.stderr
        assert part.name in skipped.stderr and "skipped" in skipped.stderr


class TestBombs:
    def test_more_rows_than_the_record_is_refused_before_decoding(self, tmp_path: Path):
        """A part grown beyond its manifest record's count is not decoded."""
        part = sealed_log(tmp_path)
        _rewrite(part, lambda t: pa.concat_tables([t] * 50))
        with pytest.raises(CorruptSegmentError, match="declares 600 rows but its manifest"):
            open_log(tmp_path, progress=False).entries()
        assert not open_log(tmp_path, progress=False).verify().ok

    def test_an_expansion_no_record_vouches_for_is_never_read(self, tmp_path: Path):
        """A planted part that decodes to far more than it stores is left out, unread."""
        sealed_log(tmp_path)
        honest = len(open_log(tmp_path, progress=False).entries())
        bomb = tmp_path / f"date={DAY}" / "part-20260129-009.parquet"
        _write_bomb(bomb, 96 * 2**20)
        assert bomb.stat().st_size < 2**20
        with pytest.warns(IntegrityWarning, match="part-20260129-009"):
            assert len(open_log(tmp_path, progress=False).entries()) == honest
        report = open_log(tmp_path, progress=False).verify()
        assert "inserted" in set(report.to_frame()["status"])

    @pytest.mark.slow
    def test_memory_stays_bounded_while_a_bomb_is_refused(self, tmp_path: Path):
        """Reading a log with a bomb in it takes no more memory than reading it without.

        The peak is the reading process's own high-water mark (``VmHWM``, which starts
        afresh at ``exec``, unlike ``ru_maxrss``).
        """
        sealed_log(tmp_path)
        script = (
            "import re\n"
            "from comply_lab import open_log, CorruptSegmentError\n"
            f"log = open_log({str(tmp_path)!r}, progress=False)\n"
            "log.entries()  # a planted part is left out, with a warning\n"
            "status = open('/proc/self/status').read()\n"
            "print(re.search(r'VmHWM:\\s+(\\d+) kB', status).group(1))\n"
        )

        def peak_kib() -> int:
            run = subprocess.run(
                [sys.executable, "-c", script],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
            )
            assert run.returncode == 0, run.stderr
            return int(run.stdout)

        before = peak_kib()
        _write_bomb(tmp_path / f"date={DAY}" / "part-20260129-009.parquet", 256 * 2**20)
        assert peak_kib() - before < 64 * 1024  # decoding it would take 256 MiB and more

    def test_a_vouched_part_that_compresses_well_is_read(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ):
        """Honest repetitive content: its part's bytes match its record, so it is decoded."""
        monkeypatch.setattr(parts, "EXPANSION_FLOOR", 0)
        clock = FakeClock(T0)
        storage = FileStorage(tmp_path, format="parquet", fsync="never")
        with AuditLogger(storage, store_content=True, clock=clock) as logger:
            logger.log_sync(input="a" * 2_000_000, output="b")
        (part,) = tmp_path.glob("date=*/*.parquet")
        assert len(open_log(tmp_path, progress=False).entries()) == 1
        copy = part.with_name("part-20260129-009.parquet")
        copy.write_bytes(part.read_bytes())  # the same bytes, but no record names them
        with pytest.warns(IntegrityWarning, match="part-20260129-009"):
            assert len(open_log(tmp_path, progress=False).entries()) == 1


def _write_bomb(path: Path, size: int) -> None:
    """Write a one-row entries part whose ``input_content`` decodes to ``size`` bytes."""
    row = {name: None for name in SCHEMA.names}
    row.update(
        id="019c0988-5e40-7000-8000-000000000009",
        timestamp=T0,
        input_hash="0" * 64,
        output_hash="0" * 64,
        input_content="a" * size,
    )
    table = pa.Table.from_pylist([row], schema=SCHEMA)
    pq.write_table(table, str(path), compression="zstd", compression_level=19)
    del table


class TestMetadataLimits:
    def test_deep_metadata_gets_a_typed_error_not_a_recursion_error(self):
        deep: dict[str, Any] = {}
        cursor = deep
        for _ in range(100_000):
            cursor["a"] = {}
            cursor = cursor["a"]
        logger = AuditLogger(MemoryStorage())
        with pytest.raises(InvalidEntryError, match="METADATA_MAX_DEPTH"):
            logger.log_sync(input="q", output="a", metadata=deep)
        within: dict[str, Any] = {}
        cursor = within
        for _ in range(METADATA_MAX_DEPTH - 1):
            cursor["a"] = {}
            cursor = cursor["a"]
        logger.log_sync(input="q", output="a", metadata=within)

    @pytest.mark.parametrize(
        "metadata",
        [{"blob": "x" * (METADATA_MAX_SIZE + 1)}, {"many": [[i] for i in range(200_000)]}],
        ids=["one large value", "many small values"],
    )
    def test_large_metadata_is_refused_naming_the_limit(self, metadata: dict[str, Any]):
        with pytest.raises(InvalidEntryError, match="METADATA_MAX_SIZE"):
            AuditLogger(MemoryStorage()).log_sync(input="q", output="a", metadata=metadata)

    def test_metadata_that_is_json_but_not_an_object_in_jsonl(self, tmp_path: Path):
        """A JSONL line whose metadata is a list is a damaged line, reported by verify."""
        clock = FakeClock(T0)
        with AuditLogger(FileStorage(tmp_path, fsync="never"), clock=clock) as logger:
            logger.log_sync(input="q", output="a", metadata={"k": 1})
            logger.log_sync(input="r", output="a")
        (path,) = tmp_path.glob("audit_*.jsonl")
        path.write_bytes(path.read_bytes().replace(b'"metadata":{"k":1}', b'"metadata":[1]'))
        log = open_log(tmp_path, progress=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert len(log.entries()) == 1
        assert any("line 1" in str(w.message) for w in caught)
        assert not log.verify().ok


class TestExtremeDays:
    @pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
    def test_partitions_at_the_ends_of_the_calendar(self, tmp_path: Path, fmt: str):
        """Days 0001-01-01 and 9999-12-31 are listed, read, planned, deleted and verified."""
        for when in (datetime(1, 1, 1, 0, 1), datetime(2026, 1, 1), datetime(9999, 12, 31, 23)):
            name = f"audit_{when.year:04d}{when:%m%d}.jsonl"
            (tmp_path / name).write_bytes(orjson.dumps(original_record(when, "x")) + b"\n")
        if fmt == "parquet":
            compact(tmp_path)
            assert (tmp_path / "date=0001-01-01" / "part-00010101-000.parquet").is_file()
        log = open_log(tmp_path, progress=False)
        assert list(log.partitions()["date"]) == [
            date(1, 1, 1),
            date(2026, 1, 1),
            date(9999, 12, 31),
        ]
        assert len(log.entries()) == 3 and len(log) == 3
        plan = log.retention_plan(30, now="9999-12-31T23:59:59")
        assert list(plan["action"]) == ["delete", "delete", "keep"]
        assert log.apply_retention(plan).partitions == [date(1, 1, 1), date(2026, 1, 1)]
        assert list(log.partitions()["date"]) == [date(9999, 12, 31)]
        logger = AuditLogger(FileStorage(tmp_path, format=fmt), retention_days=10**6)
        assert logger.cleanup_expired_sync() == 0  # a retention reaching before year 1
        assert log.verify(require_signatures=False, allow_unsigned=True).ok


def _mutate(data: bytes, rng: random.Random) -> bytes:
    """One random damage: a truncation, a few flipped bits, or a zeroed range."""
    kind = rng.randrange(3)
    if kind == 0:
        return data[: rng.randrange(len(data))]
    changed = bytearray(data)
    if kind == 1:
        for _ in range(rng.randrange(1, 5)):
            changed[rng.randrange(len(changed))] ^= 1 << rng.randrange(8)
    else:
        start = rng.randrange(len(changed))
        end = min(len(changed), start + rng.randrange(1, 256))
        changed[start:end] = bytes(end - start)
    return bytes(changed)


def test_fuzz_damaged_parts_only_raise_typed_errors(tmp_path: Path):
    """Random damages of a sealed part: every read path raises only ComplyLabError."""
    part = sealed_log(tmp_path, entries=6)
    original = part.read_bytes()
    logger = AuditLogger(FileStorage(tmp_path, format="parquet"))
    log = open_log(tmp_path, progress=False)
    paths: dict[str, Callable[[], object]] = {
        "entries": lambda: log.entries(),
        "metadata_keys": lambda: log.entries(DAY, DAY, metadata_keys=["user_id"]),
        "len": lambda: len(log),
        "partitions": lambda: log.partitions(),
        "get_entries": lambda: logger.get_entries_sync(DAY, DAY),
        "retention_plan": lambda: log.retention_plan(30, now="2026-06-01"),
    }
    rng = random.Random(20261130)
    for case in range(FUZZ_CASES):
        part.write_bytes(_mutate(original, rng))
        for name, read in paths.items():
            try:
                read()
            except ComplyLabError:
                pass
            except Exception as err:  # pragma: no cover - the failure being looked for
                raise AssertionError(f"case {case}, {name}: {type(err).__name__}: {err}") from err
        if case % 10 == 0:
            report = log.verify()  # never raises for damage
            assert report.ok == (part.read_bytes() == original), f"case {case}"
    part.write_bytes(original)
    assert log.verify(allow_unsigned=True).ok
