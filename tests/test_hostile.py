"""Hostile and broken input, malformed stores, and names built from user input.

Any value either round-trips or is refused with a typed error naming the field; malformed
stores are reported exactly, never silently dropped; user input never leaves the store.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from comply_lab import (
    AuditLogger,
    InvalidEntryError,
    InvalidQueryError,
    KeyRing,
    StorageError,
    open_log,
)
from comply_lab.audit import FileStorage, MemoryStorage, SubjectKeys
from comply_lab.errors import CorruptLineWarning, CorruptSegmentError, IntegrityWarning
from comply_lab.storage.compaction import compact
from comply_lab.storage.s3 import S3Storage
from tests.conftest import FakeClock, new_bucket

PROPERTY = settings(
    max_examples=int(os.environ.get("COMPLY_LAB_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
T0 = datetime(2026, 1, 29, 10, 30, tzinfo=UTC)
any_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=50)
any_value: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | any_text
    | st.binary(max_size=4)
    | st.datetimes()
    | st.sets(st.integers(), max_size=2),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(any_text | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


def _attempt(call: Callable[[], Any]) -> tuple[Any, Exception | None]:
    """Return (result, None), or (None, the error) for any exception."""
    try:
        return call(), None
    except Exception as err:
        return None, err


def _json_equal(value: Any) -> Any:
    """Return what JSON gives back for a value: tuples become lists."""
    if isinstance(value, tuple | list):
        return [_json_equal(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_equal(v) for k, v in value.items()}
    return value


class TestAnyInput:
    @PROPERTY
    @given(
        field=st.sampled_from(
            ["input", "output", "provider", "model", "conversation_id", "block_reason"]
        ),
        text=any_text,
    )
    def test_any_string_round_trips_or_names_the_field(self, field: str, text: str):
        """Surrogates are refused naming the field; everything else comes back equal."""
        logger = AuditLogger(MemoryStorage(), store_content=True, clock=FakeClock(T0))
        kwargs: dict[str, Any] = {"input": "i", "output": "o", field: text}
        entry_id, err = _attempt(lambda: logger.log_sync(**kwargs))
        if err is not None:
            assert isinstance(err, InvalidEntryError) and field in str(err)
            assert any(0xD800 <= ord(c) <= 0xDFFF for c in text)
            return
        entry = logger.get_entry_sync(entry_id)
        assert entry is not None
        stored = {"input": entry.input_content, "output": entry.output_content}.get(
            field, getattr(entry, field, None)
        )
        assert stored == text

    @PROPERTY
    @given(metadata=st.dictionaries(any_text, any_value, max_size=4))
    def test_any_metadata_round_trips_or_names_the_key(self, metadata: dict[str, Any]):
        """Non-JSON values (sets, bytes, datetimes, NaN, huge ints, surrogates) are refused."""
        logger = AuditLogger(MemoryStorage(), clock=FakeClock(T0))
        entry_id, err = _attempt(lambda: logger.log_sync(input="i", output="o", metadata=metadata))
        if err is not None:
            assert isinstance(err, InvalidEntryError) and "metadata" in str(err), repr(err)
            return
        entry = logger.get_entry_sync(entry_id)
        assert entry is not None and entry.metadata == _json_equal(metadata)
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in metadata.values())

    def test_ten_megabytes_of_content(self):
        """A 10 MB prompt is hashed, stored and read back unchanged."""
        big = "ä" * (5 * 1024 * 1024)  # 10 MB of UTF-8
        logger = AuditLogger(MemoryStorage(), store_content=True)
        entry = logger.get_entry_sync(logger.log_sync(input=big, output=big + "\0"))
        assert entry is not None and entry.input_content == big
        assert entry.output_content == big + "\0"

    @PROPERTY
    @given(
        start=st.datetimes(timezones=st.none() | st.timezones()),
        span=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)),
    )
    def test_any_datetimes_in_queries(self, start: datetime, span: timedelta):
        """Naive, aware, far past or future, DST edges: a correct answer or a typed error."""
        logger = AuditLogger(MemoryStorage(), clock=FakeClock(T0))
        logger.log_sync(input="i", output="o")
        end, overflow = _attempt(lambda: start + span)
        assume(overflow is None)  # beyond datetime.max: no such query can be written
        found, err = _attempt(lambda: logger.get_entries_sync(start, end))
        if err is not None:
            assert isinstance(err, InvalidQueryError), f"untyped error {err!r}"
            return
        lo = start.replace(tzinfo=UTC) if start.tzinfo is None else start
        assert [e.timestamp for e in found] == ([T0] if lo <= T0 <= lo + span else [])

    @pytest.mark.parametrize(
        "moment",
        [
            datetime(2026, 3, 8, 2, 30),  # does not exist in New York, but naive means UTC
            datetime(2026, 11, 1, 1, 30, fold=1, tzinfo=ZoneInfo("America/New_York")),
            datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=-12))),
            datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
        ],
    )
    def test_clock_edges_are_stored_in_utc(self, moment: datetime):
        """Entries logged at odd clock values are stored and found at the same UTC instant."""
        logger = AuditLogger(MemoryStorage(), clock=lambda: moment)
        entry, err = _attempt(lambda: logger.get_entry_sync(logger.log_sync(input="i", output="o")))
        if err is not None:
            assert isinstance(err, InvalidEntryError) and "timestamp" in str(err), repr(err)
            return
        expected = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        assert entry is not None and entry.timestamp == expected.astimezone(UTC)


def _log(path: Path, days: int = 2, fmt: str = "jsonl") -> list[str]:
    clock = FakeClock(T0)
    ids = []
    with AuditLogger(FileStorage(path, format=fmt, fsync="never"), clock=clock) as logger:
        for _ in range(days):
            ids += [logger.log_sync(input=f"q{i}", output="a") for i in range(3)]
            clock.advance(days=1)
    return ids


class TestMalformedStores:
    @pytest.mark.parametrize(
        ("damage", "message"),
        [
            (lambda b: b[:-40], "incomplete last line"),
            (lambda b: b.replace(b'"alerts"', b'"al\xff\xfe"', 1), "not valid JSON"),
            (lambda b: b.replace(b'"latency_ms":0.0', b'"latency_ms":"fast"', 1), "line 1"),
            (lambda b: b.replace(b"\n", b"\n{not json}\n", 1), "line 2: not valid JSON"),
        ],
        ids=["cut line", "invalid UTF-8", "wrong type", "garbage line"],
    )
    def test_damaged_jsonl_is_reported_by_path_and_line(
        self, tmp_path: Path, damage: Any, message: str
    ):
        """Each damage names the file and line; every other entry is still read."""
        ids = _log(tmp_path, days=1)
        path = next(tmp_path.glob("audit_*.jsonl"))
        path.write_bytes(damage(path.read_bytes()))
        with pytest.warns(CorruptLineWarning, match=message) as caught:
            found = [e.id for e in FileStorage(tmp_path).read_day(T0.date())]
        assert str(path) in str(caught[0].message)
        assert len(found) >= len(ids) - 1 and set(found) <= set(ids)
        assert (
            not open_log(tmp_path, progress=False).verify().ok or message == "incomplete last line"
        )

    def test_truncated_parquet_footer_names_the_file(self, tmp_path: Path):
        """A Parquet segment cut short raises CorruptSegmentError naming it; verify reports it."""
        _log(tmp_path, fmt="parquet")
        part = sorted(tmp_path.glob("date=*/*.parquet"))[0]
        part.write_bytes(part.read_bytes()[:-20])
        log = open_log(tmp_path, progress=False)
        with pytest.raises(CorruptSegmentError, match=part.name):
            log.entries()
        problems = log.verify(allow_unsigned=True).to_frame()
        assert part.name in " ".join(problems["segment"].astype(str))
        other_day = sorted(tmp_path.glob("date=*"))[1].name[5:]
        assert len(log.entries(other_day, other_day)) == 3  # other days still read

    def test_foreign_files_are_ignored_or_reported(self, tmp_path: Path):
        """Unrelated files are ignored; a forged part is left out with a warning, and reported."""
        ids = _log(tmp_path, fmt="parquet")
        (tmp_path / "notes.txt").write_text("hello")
        (tmp_path / "date=2026-01-29" / "README").write_text("hello")
        (tmp_path / "date=2026-01-29" / "part-20260129-009.parquet").write_bytes(b"PAR1junk")
        log = open_log(tmp_path, progress=False)
        with pytest.warns(IntegrityWarning, match="part-20260129-009"):
            assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
        report = log.verify()
        assert "inserted" in set(report.to_frame()["status"])
        (tmp_path / "date=2026-01-29" / "part-20260129-009.parquet").unlink()
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)

    def test_manifest_that_is_not_json(self, tmp_path: Path):
        """A damaged manifest line is reported with its line; reading still works."""
        ids = _log(tmp_path, fmt="parquet")
        manifest = tmp_path / "_manifest.jsonl"
        manifest.write_bytes(manifest.read_bytes() + b"this is not json\n")
        log = open_log(tmp_path, progress=False)
        assert sorted(log.entries(columns=["id"])["id"]) == sorted(ids)
        problems = log.verify().to_frame()
        assert "_manifest.jsonl line 3" in set(problems["segment"])

    def test_s3_object_with_the_wrong_content(self, tmp_path: Path, s3_endpoint: str):
        """An S3 object replaced by junk is named by its key; other days still read."""
        bucket = new_bucket(s3_endpoint)
        storage = S3Storage(bucket, "a/", endpoint_url=s3_endpoint, spool_dir=tmp_path / "s")
        clock = FakeClock(T0)
        with AuditLogger(storage, clock=clock) as logger:
            for _ in range(2):
                logger.log_sync(input="q", output="a")
                clock.advance(days=1)
        client = boto3.client("s3", endpoint_url=s3_endpoint)
        key = next(
            o["Key"]
            for o in client.list_objects_v2(Bucket=bucket, Prefix="a/date=2026-01-29")["Contents"]
        )
        client.put_object(Bucket=bucket, Key=key, Body=b"not parquet")
        log = open_log(f"s3://{bucket}/a/", progress=False)
        with pytest.raises(CorruptSegmentError, match=key.removeprefix("a/")):
            log.entries("2026-01-29", "2026-01-29")
        assert len(log.entries("2026-01-30", "2026-01-30")) == 1
        assert not log.verify().ok


class TestPathSafety:
    def test_user_values_never_become_paths(self, tmp_path: Path):
        """Ids, conversation ids, metadata, hold names and subjects stay inside the store."""
        root = tmp_path / "store"
        keys = SubjectKeys(tmp_path / "keys", KeyRing.generate())
        evil = "../../../../tmp/escaped"
        with AuditLogger(FileStorage(root), keys, store_content=True) as logger:
            logger.log_sync(
                input=evil,
                output=evil,
                conversation_id=evil,
                provider=evil,
                metadata={"user_id": evil, evil: evil},
            )
            assert logger.get_entry_sync(evil) is None
            assert logger.get_entry_sync("/etc/passwd") is None
        log = open_log(root, progress=False)
        log.hold(evil, conversation_id=evil, reason=evil)
        log.decrypt([evil], keys, reason=evil, who=evil)
        outside = {p for p in tmp_path.rglob("*")} - {*root.rglob("*"), *keys.directory.rglob("*")}
        assert outside == {root, keys.directory}
        assert not Path("/tmp/escaped").exists()
        assert all(p.parent == keys.directory for p in keys.directory.iterdir())

    @pytest.mark.parametrize("prefix", ["../other", "a/../../b", "./x", "a\\b", "a/\x00/b"])
    def test_s3_prefixes_that_read_like_paths_are_refused(self, prefix: str, tmp_path: Path):
        """A prefix with '..', '.', backslashes or control characters is an error."""
        with pytest.raises(StorageError, match="plain names"):
            S3Storage("bucket", prefix, spool_dir=tmp_path)
        assert S3Storage("b", "//prod//audit/", spool_dir=tmp_path).prefix == "prod/audit/"

    def test_compact_refuses_a_non_directory(self, tmp_path: Path):
        """Paths are used as given, and a wrong one is an error, not a new directory."""
        with pytest.raises(StorageError, match="not a log directory"):
            compact(tmp_path / "missing")
        assert not (tmp_path / "missing").exists()
        assert date(2026, 1, 1) not in FileStorage(tmp_path).days()
