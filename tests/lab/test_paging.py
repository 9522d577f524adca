"""Pages read as needed give exactly the rows a full read would, in the order asked."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from comply_lab import AuditLogger, Log, open_log
from comply_lab.audit import FileStorage, MemoryStorage
from comply_lab.lab import scanner
from comply_lab.lab.frame import to_frame
from comply_lab.lab.paging import ORDERS, Pager
from comply_lab.lab.query import Query
from comply_lab.sample import write_sample
from comply_lab.storage import arrow
from comply_lab.storage.compaction import compact

END = datetime(2026, 1, 11, tzinfo=UTC)


@pytest.fixture(
    scope="module",
    params=["memory", pytest.param("jsonl", marks=pytest.mark.slow), "parquet"],
)
def log(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Log:
    """Return 1,500 sample entries over 10 days in each kind of store."""
    if request.param == "memory":
        storage = MemoryStorage()
        write_sample(lambda c: AuditLogger(storage, clock=c), 1500, 10, end=END)
        return open_log(storage)
    path = tmp_path_factory.mktemp(request.param) / "log"
    write_sample(
        lambda c: AuditLogger(FileStorage(path, format=request.param), clock=c), 1500, 10, end=END
    ).close()
    return open_log(path)


def _expected(log: Log, order: str, start: str | None, end: str | None, **filters: object):
    frame = log.entries(start, end, columns=["id", "timestamp", "latency_ms", "safety_passed"],
                        **filters)  # fmt: skip
    if order == "oldest first":
        return list(frame["id"])
    if order == "newest first":
        return list(frame.sort_values("timestamp", ascending=False, kind="stable")["id"])
    column = "latency_ms" if order == "slowest first" else "safety_passed"
    ascending = order == "blocked first"
    ranked = frame.sort_values([column, "timestamp"], ascending=[ascending, False], kind="stable")
    return list(ranked["id"])


def _paged(log: Log, order: str, start: str | None, end: str | None, size: int, **filters: object):
    query = Query.build(start, end, columns=["id", "timestamp", "latency_ms"], **filters)
    pager = Pager(log.storage, query, order)  # type: ignore[arg-type]
    rows: list[str] = []
    for offset in range(0, pager.total() + size, size):
        rows += list(to_frame(pager.page(offset, size))["id"])
    return pager.total(), rows


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize(
    ("start", "end", "filters"),
    [
        (None, None, {}),
        ("2026-01-03T12:00", "2026-01-07T06:00", {}),
        (None, None, {"safety_passed": False}),
        ("2026-01-02", "2026-01-08", {"model": ["gpt-4o", "claude-3-haiku"], "detector": "pii"}),
    ],
)
def test_pages_are_the_full_read_in_order(
    log: Log, order: str, start: str | None, end: str | None, filters: dict[str, object]
):
    """Every page, end to end, is the full result in the pager's order; the total matches."""
    expected = _expected(log, order, start, end, **filters)
    total, rows = _paged(log, order, start, end, 160, **filters)
    assert total == len(expected)
    assert rows == expected  # ties in the sort column come newest first in both


def test_a_page_past_the_end_is_empty(log: Log):
    """Asking beyond the last row gives an empty page, not an error."""
    pager = Pager(log.storage, Query.build(columns=["id"]))
    assert pager.page(pager.total() + 10, 20).num_rows == 0


def test_unfiltered_days_are_counted_without_reading_rows(tmp_path: Path, monkeypatch):
    """A whole day with no row filter is counted from its manifest record."""
    path = tmp_path / "log"
    write_sample(lambda c: AuditLogger(FileStorage(path, format="parquet"), clock=c), 300, 3,
                 end=END).close()  # fmt: skip
    pager = Pager(open_log(path).storage, Query.build(columns=["id"]))
    monkeypatch.setattr(Pager, "_read", lambda *a: pytest.fail("rows were read to count"))
    assert pager.total() == 300


def _jsonl_log(path: Path) -> Log:
    write_sample(lambda c: AuditLogger(FileStorage(path), clock=c), 300, 3, end=END).close()
    return open_log(path)


def test_a_ranked_page_decodes_only_the_row_groups_of_its_rows(tmp_path: Path, monkeypatch):
    """Slowest first: a page reads back the row groups holding its rows, no other."""
    monkeypatch.setitem(arrow.WRITE_OPTIONS, "row_group_size", 25)
    path = tmp_path / "log"
    log = _jsonl_log(path)
    compact(path)  # four row groups a day
    pager = Pager(log.storage, Query.build(columns=["id", "latency_ms"]), "slowest first")
    pager.total()
    expected = log.entries(columns=["id", "latency_ms"]).nlargest(3, "latency_ms")
    reads: list[object] = []
    original = scanner.read_part
    monkeypatch.setattr(
        scanner, "read_part", lambda *a, **k: reads.append(k.get("row_groups")) or original(*a, **k)
    )
    page = to_frame(pager.page(0, 3))
    assert list(page["id"]) == list(expected["id"])
    assert len(reads) <= 3 and all(groups is not None and len(groups) == 1 for groups in reads)


def test_a_ranked_page_survives_sealing_after_the_ranking(tmp_path: Path):
    """Segments sealed between ranking and reading a page: ranked again, same rows."""
    path = tmp_path / "log"
    log = _jsonl_log(path)
    expected = _expected(log, "slowest first", None, None)
    pager = Pager(log.storage, Query.build(columns=["id"]), "slowest first")
    pager.total()
    compact(path)  # every JSONL segment the ranking located is gone now
    assert list(to_frame(pager.page(0, 300))["id"]) == expected
