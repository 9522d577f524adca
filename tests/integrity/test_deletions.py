"""Deletion on request against an attacker with file access, and across honest operations."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from comply_lab import AuditLogger, MemoryStorage, open_log
from comply_lab.audit import FileStorage
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.integrity.tlog import LogTree, consistency
from comply_lab.sample import write_sample
from comply_lab.storage.compaction import compact
from comply_lab.storage.deletions import deletion_record
from comply_lab.storage.manifest import DELETIONS, MANIFEST, chain_record, record_line

KEY = generate_signing_key()


def _log(path: Path, fmt: str = "parquet", entries: int = 40) -> FileStorage:
    storage = FileStorage(path, format=fmt, signing_key=KEY)
    write_sample(lambda c: AuditLogger(storage, clock=c), entries, 2, seed=3).close()
    return FileStorage(path, signing_key=KEY)


def _statuses(path: Path) -> dict[str, list[str | None]]:
    found: dict[str, list[str | None]] = {}
    for problem in open_log(path).verify(public_key=KEY).problems:
        found.setdefault(problem.status, []).append(problem.entry_id)
    return found


def _append_unsigned(path: Path, name: str, record: dict) -> None:
    """Append what an attacker without the key can make: a well-chained, unsigned record."""
    lines = (path / name).read_bytes().splitlines() if (path / name).exists() else []
    previous = json.loads(lines[-1]) if lines else None
    with (path / name).open("ab") as file:
        file.write(record_line(chain_record(record, previous)) + b"\n")


def test_deletion_is_recorded_signed_and_verifies_after_sealing(tmp_path: Path):
    """Who, why, when in a signed record; DuckDB and pandas no longer see the entry."""
    storage = _log(tmp_path / "log", "jsonl")
    victim = open_log(storage).entries()["id"].iloc[5]
    assert storage.delete_sync(victim, by="dpo@example.com", reason="erasure request 42")
    record = json.loads((tmp_path / "log" / DELETIONS).read_text())
    assert record["entry_id"] == victim and record["by"] == "dpo@example.com"
    assert record["reason"] == "erasure request 42" and record["signature"]
    assert record["seq"] == 5 and len(record["entry_hash"]) == 64
    log = open_log(tmp_path / "log")
    assert victim not in set(log.dataset().to_table().column("id").to_pylist())
    assert log.sql(f"select count(*) as n from entries where id = '{victim}'")["n"][0] == 0
    compact(storage)
    manifest = [json.loads(line) for line in (tmp_path / "log" / MANIFEST).read_text().split()]
    assert [victim] in [r.get("removed_on_request") for r in manifest]
    files = sorted(str(p) for p in (tmp_path / "log").glob("date=*/*.parquet"))
    assert duckdb.sql(
        f"select count(*) from read_parquet({files}) where id = '{victim}'"
    ).fetchall() == [(0,)]
    assert victim not in set(pd.read_parquet(tmp_path / "log")["id"])
    assert _statuses(tmp_path / "log") == {"deleted_on_request": [victim]}


def test_an_entry_removed_by_hand_is_still_missing(tmp_path: Path):
    """No record, no excuse: a line cut out of a segment breaks the chain."""
    _log(tmp_path / "log", "jsonl")
    segment = sorted((tmp_path / "log").glob("audit_*.jsonl"))[0]
    lines = segment.read_bytes().splitlines(keepends=True)
    segment.write_bytes(b"".join(lines[:2] + lines[3:]))
    assert "missing" in _statuses(tmp_path / "log")


def test_a_forged_deletion_record_explains_nothing(tmp_path: Path):
    """An unsigned deletion record (right chain fields and all) is refused; the gap is missing."""
    storage = _log(tmp_path / "log", "jsonl")
    segment = sorted((tmp_path / "log").glob("audit_*.jsonl"))[0]
    lines = segment.read_bytes().splitlines(keepends=True)
    victim = storage.read_sync(json.loads(lines[2])["id"])
    assert victim is not None
    segment.write_bytes(b"".join(lines[:2] + lines[3:]))
    _append_unsigned(tmp_path / "log", DELETIONS, deletion_record(victim, "intruder", "cover-up"))
    found = _statuses(tmp_path / "log")
    assert "bad_signature" in found and "missing" in found
    assert "deleted_on_request" not in found
    assert not open_log(tmp_path / "log").verify(public_key=KEY).ok


def test_a_forged_compaction_of_a_sealed_part_is_refused(tmp_path: Path):
    """A part rewritten without a row, with an unsigned record claiming pruning: caught."""
    storage = _log(tmp_path / "log")
    part = sorted((tmp_path / "log").glob("date=*/*.parquet"))[0]
    table = pq.read_table(part)
    victim = storage.read_sync(table.column("id")[1].as_py())
    assert victim is not None
    _append_unsigned(tmp_path / "log", DELETIONS, deletion_record(victim, None, None))
    pq.write_table(table.filter([i != 1 for i in range(table.num_rows)]), part)
    found = _statuses(tmp_path / "log")
    assert "bad_signature" in found and ("modified" in found or "missing" in found)


def test_deleting_twice_or_a_stranger_changes_nothing(tmp_path: Path):
    """False for an id already deleted or never logged; no second record."""
    storage = _log(tmp_path / "log")
    victim = open_log(storage).entries()["id"].iloc[0]
    assert storage.delete_sync(victim) and not storage.delete_sync(victim)
    assert not storage.delete_sync("4b3c2d1e-0000-4000-8000-000000000000")
    assert len((tmp_path / "log" / DELETIONS).read_text().splitlines()) == 1


def test_checkpoints_and_proofs_outlive_compaction_and_retention(tmp_path: Path):
    """The tree keeps removed rows' leaves: old checkpoints match, proofs and consistency hold."""
    storage = _log(tmp_path / "log", entries=60)
    log = open_log(storage)
    before = log.checkpoint(KEY)
    frame = log.entries()
    victims = list(frame["id"].iloc[[0, 1, 40]])
    for victim in victims:
        storage.delete_sync(victim, reason="request")
    pending = open_log(storage).dataset().to_table().column("id").to_pylist()
    assert len(pending) == 57 and not set(victims) & set(pending)  # Parquet files, filtered
    assert compact(storage).pruned
    after = open_log(storage).checkpoint(KEY)
    assert (after.size, after.tree_root) == (before.size, before.tree_root)
    assert open_log(tmp_path / "log").verify(public_key=KEY, checkpoint=before).ok
    others = [i for i in frame["id"].iloc[2:6]]
    assert all(p.verify(before.tree_root) for p in open_log(storage).prove(others, before))
    tree = LogTree.of(storage)
    assert consistency(tree, before, after).verify()
    first_day = storage.days()[0]
    storage.drop_day(first_day)
    assert open_log(tmp_path / "log").verify(public_key=KEY, checkpoint=before).ok


def test_a_compaction_cut_short_is_finished_by_the_next(tmp_path: Path, monkeypatch):
    """Record written, part not yet replaced: an incomplete warning, then the next run ends it."""
    from comply_lab.storage import seal

    storage = _log(tmp_path / "log")
    victim = open_log(storage).entries()["id"].iloc[3]
    storage.delete_sync(victim)
    monkeypatch.setattr(seal.LocalSink, "commit", lambda self, name: None)
    compact(storage)
    monkeypatch.undo()
    report = open_log(tmp_path / "log").verify(public_key=KEY)
    assert report.ok and "incomplete" in {p.status for p in report.problems}
    compact(storage)
    assert _statuses(tmp_path / "log") == {"deleted_on_request": [victim]}


def test_memory_storage_deletes_at_once():
    """Nothing to seal: the line is gone now; the record still explains the gap."""
    storage = MemoryStorage()
    logger = AuditLogger(storage)
    ids = [logger.log_sync(input=f"q{i}", output="a") for i in range(3)]
    assert storage.delete_sync(ids[1], by="me")
    assert b"".join(storage.drain().values()).count(b'"id"') == 2
    assert storage.read_metadata(DELETIONS).count(b"\n") == 1


def test_everything_deleted_from_a_segment(tmp_path: Path):
    """A source whose every entry was deleted leaves no part, and the log still verifies."""
    storage = FileStorage(tmp_path / "log", format="jsonl", signing_key=KEY)
    logger = AuditLogger(storage)
    ids = [logger.log_sync(input=f"q{i}", output="a") for i in range(3)]
    logger.close()
    for entry_id in ids:
        assert storage.delete_sync(entry_id)
    compact(storage)
    assert not list((tmp_path / "log").glob("date=*/*.parquet"))
    assert sorted(_statuses(tmp_path / "log")["deleted_on_request"]) == sorted(ids)


def test_legal_holds_win_in_the_lab_and_the_cli(tmp_path: Path):
    """log.delete and comply-lab delete refuse held entries, record who and why otherwise."""
    import subprocess
    import sys

    from comply_lab.crypto.signing import private_key_pem
    from comply_lab.errors import EntryHeldError, InvalidQueryError

    storage = _log(tmp_path / "log")
    log = open_log(tmp_path / "log", signing_key=KEY)
    frame = log.entries()
    held, free = frame.iloc[0], frame.iloc[-1]
    log.hold("matter-9", end=held.timestamp, reason="litigation")
    with pytest.raises(EntryHeldError, match="matter-9"):
        log.delete(held.id, reason="erasure")
    with pytest.raises(InvalidQueryError, match="reason"):
        log.delete(free.id, reason="")
    assert storage.read_sync(held.id) is not None
    key = tmp_path / "writer.pem"
    key.write_bytes(private_key_pem(KEY))
    cli = [sys.executable, "-m", "comply_lab.cli", "delete", str(tmp_path / "log")]
    done = subprocess.run(
        [*cli, free.id, "--reason", "erasure 118", "--who", "dpo", "--signing-key", str(key)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and f"deleted {free.id}" in done.stdout
    refused = subprocess.run([*cli, held.id, "--reason", "x", "--signing-key", str(key)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    assert refused.returncode == 2 and "legal hold" in refused.stderr
    again = subprocess.run([*cli, free.id, "--reason", "x", "--signing-key", str(key)],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert again.returncode == 1 and "deleted already" in again.stderr
    assert _statuses(tmp_path / "log") == {"deleted_on_request": [free.id]}
    record = json.loads((tmp_path / "log" / DELETIONS).read_text())
    assert (record["by"], record["reason"]) == ("dpo", "erasure 118")


def test_a_rewritten_part_grown_beyond_its_first_generation_is_refused(tmp_path: Path):
    """The row limit of a part compaction rewrote is the most any generation held."""
    import pyarrow as pa

    from comply_lab.errors import CorruptSegmentError

    storage = _log(tmp_path / "log")
    victim = open_log(storage).entries()["id"].iloc[2]
    storage.delete_sync(victim)
    (pruned,) = compact(storage).pruned
    part = tmp_path / "log" / pruned
    table = pq.read_table(part)
    assert len(open_log(tmp_path / "log").entries()) == 39  # readable as rewritten
    pq.write_table(pa.concat_tables([table, table.slice(0, 2)]), part)
    with pytest.raises(CorruptSegmentError, match="refused before decoding"):
        open_log(tmp_path / "log").entries()
    assert not open_log(tmp_path / "log").verify(public_key=KEY).ok
