"""The id index: ids that do not name their day (the original tool's UUIDv4) found fast."""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import duckdb
import pytest

from comply_lab import AuditEntry, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.storage import parts
from comply_lab.storage.compaction import compact
from comply_lab.storage.manifest import IDS, MANIFEST
from tests.conftest import adopt_and_compact, new_bucket, original_record

T0 = datetime(2026, 1, 29, 8, tzinfo=UTC)
KEY = generate_signing_key()


def _original_log(path: Path, days: int = 3, per_day: int = 40) -> list[dict]:
    """Write the original tool's day files (UUIDv4 ids, naive timestamps)."""
    path.mkdir()
    records = []
    for day in range(days):
        moments = [T0 + timedelta(days=day, minutes=i) for i in range(per_day)]
        found = [original_record(moment, f"q{i}") for i, moment in enumerate(moments)]
        stamp = (T0 + timedelta(days=day)).strftime("%Y%m%d")
        lines = "".join(json.dumps(r) + "\n" for r in found)
        (path / f"audit_{stamp}.jsonl").write_text(lines)
        records += found
    return records


def _reads(monkeypatch) -> list[str]:
    """Count the Parquet files a lookup opens (parts and index runs)."""
    opened: list[str] = []
    real = parts._opened

    def counting(storage, segment, honest_size, data=None):
        opened.append(segment.name)
        return real(storage, segment, honest_size, data)

    monkeypatch.setattr(parts, "_opened", counting)
    return opened


def test_a_migrated_log_is_looked_up_through_one_merged_run(tmp_path: Path, monkeypatch):
    """Compaction writes one run per source and merges them; a lookup opens the run and one part."""
    records = _original_log(tmp_path / "log")
    report = adopt_and_compact(tmp_path / "log", KEY)
    assert len(report.parts) == 3
    runs = [p.name for p in (tmp_path / "log" / "_idindex").iterdir()]
    assert runs == ["merged-000003-0000.parquet"]
    opened = _reads(monkeypatch)
    for record in records[::17]:
        entry = open_log(tmp_path / "log").entry(record["id"])
        assert entry is not None and entry.id == record["id"] and entry.metadata == {"user_id": "u"}
        assert [n.startswith("_idindex/") for n in opened] == [True, False]
        opened.clear()
    assert open_log(tmp_path / "log").entry(str(uuid.uuid4())) is None
    assert len(opened) <= 1  # at most the run: no part is read for a missing id
    storage = FileStorage(tmp_path / "log")
    assert storage.read_sync(records[5]["id"]).id == records[5]["id"]
    assert open_log(tmp_path / "log").verify(public_key=KEY).ok


def test_any_reader_can_use_the_index(tmp_path: Path):
    """The runs the trail lists are plain Parquet: DuckDB finds an id's part without us."""
    records = _original_log(tmp_path / "log")
    compact(tmp_path / "log")
    trail = [json.loads(line) for line in (tmp_path / "log" / IDS).read_text().split()]
    merged = {name for r in trail for name in r.get("merges") or []}
    runs = [str(tmp_path / "log" / r["file"]) for r in trail if r["file"] not in merged]
    wanted = records[50]["id"]
    query = f"select part from read_parquet({runs}) where id = '{wanted}'"
    (part,) = duckdb.sql(query).fetchall()[0]
    assert part == "date=2026-01-30/part-20260130-000.parquet"


def test_comply_lab_ids_need_no_index(tmp_path: Path):
    """UUIDv7 ids name their day: sealing such entries writes no run."""
    from comply_lab import AuditLogger

    storage = FileStorage(tmp_path / "log", format="parquet")
    logger = AuditLogger(storage)
    entry_id = logger.log_sync(input="q", output="a")
    logger.close()
    assert not (tmp_path / "log" / "_idindex").exists()
    records = [json.loads(line) for line in (tmp_path / "log" / MANIFEST).read_text().split()]
    assert records[0]["foreign_ids"] == 0
    assert open_log(tmp_path / "log").entry(entry_id) is not None


def test_entries_written_with_their_own_ids_are_indexed_when_sealed(tmp_path: Path):
    """write(entry) of original entries, sealed twice: two runs, then compaction merges them."""
    storage = FileStorage(tmp_path / "log", format="parquet")
    ids = []
    for batch in range(2):
        for i in range(5):
            entry = AuditEntry(**original_record(T0 + timedelta(hours=batch, minutes=i), "q"))
            ids.append(storage.write_sync(entry))
        storage.seal()
    assert len(list((tmp_path / "log" / "_idindex").iterdir())) == 2
    assert all(storage.read_sync(i).id == i for i in ids)
    compact(storage)
    assert len(list((tmp_path / "log" / "_idindex").iterdir())) == 1
    assert all(open_log(storage).entry(i).id == i for i in ids)


def test_nothing_is_lost_when_the_index_is_gone_or_damaged(tmp_path: Path):
    """A missing or damaged run: the parts it covered are read in full, and verify says why."""
    records = _original_log(tmp_path / "log")
    adopt_and_compact(tmp_path / "log", KEY)
    (run,) = (tmp_path / "log" / "_idindex").iterdir()
    saved = run.read_bytes()
    run.write_bytes(saved[:100])
    assert open_log(tmp_path / "log").entry(records[3]["id"]).id == records[3]["id"]
    report = open_log(tmp_path / "log").verify(public_key=KEY)
    assert not report.ok and "modified" in {p.status for p in report.problems}
    run.unlink()
    assert open_log(tmp_path / "log").entry(records[4]["id"]).id == records[4]["id"]
    report = open_log(tmp_path / "log").verify(public_key=KEY)
    assert not report.ok and "missing" in {p.status for p in report.problems}


def test_a_forged_index_record_is_caught(tmp_path: Path):
    """An unsigned record pointing lookups elsewhere fails verification of a signed log."""
    _original_log(tmp_path / "log")
    adopt_and_compact(tmp_path / "log", KEY)
    trail = tmp_path / "log" / IDS
    last = json.loads(trail.read_text().splitlines()[-1])
    forged = dict(last, fences=[], entries=0)
    forged.pop("signature")
    from comply_lab.storage.manifest import chain_record, record_line

    chained = ("prev_record_hash", "record_hash", "signer")
    body = {k: v for k, v in forged.items() if k not in chained}
    with trail.open("ab") as file:
        file.write(record_line(chain_record(body, last)) + b"\n")
    report = open_log(tmp_path / "log").verify(public_key=KEY)
    assert not report.ok and "bad_signature" in {p.status for p in report.problems}


def test_a_rewritten_or_planted_run_hides_no_entry(tmp_path: Path):
    """A run rewritten without an id, or a run and record a keyless attacker added: found."""
    from comply_lab.storage.idindex import run_bytes, run_record, run_table
    from comply_lab.storage.manifest import chain_record, record_line

    records = _original_log(tmp_path / "log")
    adopt_and_compact(tmp_path / "log", KEY)
    log = tmp_path / "log"
    (run,) = (log / "_idindex").iterdir()
    wanted = records[7]["id"]
    rows = duckdb.sql(f"select id, part, \"group\" from read_parquet('{run}')").fetchall()
    table = run_table((i, p, g) for i, p, g in rows if i != wanted)
    run.write_bytes(run_bytes(table))  # the same run without the id
    assert open_log(log).entry(wanted).id == wanted
    assert open_log(log, public_key=KEY.public_key()).entry(wanted).id == wanted
    trail = log / IDS
    last = json.loads(trail.read_text().splitlines()[-1])
    data = run_bytes(table)
    (log / "_idindex" / "planted.parquet").write_bytes(data)
    parts_all = sorted({p for _, p, _ in rows})
    forged = run_record("_idindex/planted.parquet", table, data, parts=parts_all)
    with trail.open("ab") as file:  # chained right, signed by nobody
        file.write(record_line(chain_record(forged, last)) + b"\n")
    assert open_log(log, public_key=KEY.public_key()).entry(wanted).id == wanted
    assert "bad_signature" in {p.status for p in open_log(log).verify(public_key=KEY).problems}


def test_lookups_survive_compaction_after_deletions(tmp_path: Path):
    """A part rewritten without deleted entries: the other ids are still found."""
    records = _original_log(tmp_path / "log")
    adopt_and_compact(tmp_path / "log", KEY)
    storage = FileStorage(tmp_path / "log", signing_key=KEY)
    assert storage.delete_sync(records[0]["id"])
    assert compact(storage).pruned
    assert storage.read_sync(records[0]["id"]) is None
    assert all(storage.read_sync(r["id"]).id == r["id"] for r in records[1:40:7])
    assert open_log(tmp_path / "log").verify(public_key=KEY).ok


def test_s3_migration_is_indexed(s3_endpoint: str):
    """The original's per-entry S3 objects, compacted: looked up through the index."""
    bucket = new_bucket(s3_endpoint)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    records = [original_record(T0 + timedelta(hours=i), f"q{i}") for i in range(30)]
    for record in records:
        day = str(record["timestamp"])[:10]
        client.put_object(Bucket=bucket, Key=f"audit/{day}/{record['id']}.json",
                          Body=json.dumps(record).encode())  # fmt: skip
    url = f"s3://{bucket}/audit/"
    compact(url)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert [k for k in keys if k.startswith("audit/_idindex/")]
    log = open_log(url, progress=False)
    assert all(log.entry(r["id"]).id == r["id"] for r in records[::5])
    assert log.entry(str(uuid.uuid4())) is None
    assert log.verify(allow_unsigned=True).ok


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path):
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_a_merged_run_is_split_into_files_each_lookup_opens_one(tmp_path: Path, monkeypatch):
    """Files of SHARD_ROWS ids, each with its first and last id: one is opened per lookup."""
    from comply_lab.storage import idindex

    monkeypatch.setattr(idindex, "SHARD_ROWS", 50)
    records = _original_log(tmp_path / "log")
    compact(tmp_path / "log")
    assert len(list((tmp_path / "log" / "_idindex").iterdir())) == 3  # 120 ids
    opened = _reads(monkeypatch)
    for record in records:
        assert open_log(tmp_path / "log").entry(record["id"]).id == record["id"]
        assert len([n for n in opened if n.startswith("_idindex/")]) == 1
        opened.clear()


def test_a_part_whose_run_was_never_recorded_is_read_in_full(tmp_path: Path):
    """Sealing cut short after the part's record, before its run's: lookups still find it."""
    records = _original_log(tmp_path / "log")
    compact(tmp_path / "log")
    (tmp_path / "log" / IDS).unlink()
    shutil.rmtree(tmp_path / "log" / "_idindex")
    storage = FileStorage(tmp_path / "log")
    assert all(storage.read_sync(r["id"]).id == r["id"] for r in records[::11])
    assert storage.read_sync(str(uuid.uuid4())) is None
