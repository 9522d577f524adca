"""Going back: a log written as day files the original tool (``rotalabs-comply``) reads.

comply_lab's JSONL files keep the original file names, but their lines do not suit the
original's ``FileStorage``: they carry five integrity fields its ``AuditEntry.from_dict``
refuses, and timezone-aware timestamps its naive ``datetime.utcnow()`` comparisons cannot
take. [`export_original`][comply_lab.audit.export.export_original] writes each day as
``audit_YYYYMMDD.jsonl`` the way the original writes it: ``json.dumps`` of its seventeen
fields in its order, the timestamp naive UTC (``2026-01-29T10:30:00.123456``).

What does not go back: the integrity fields (the chain, entry hashes and every signed
record: the exported files prove nothing by themselves, so verify the log before), and
readable content encrypted with key rings (``cl1:`` AES-GCM ciphertexts, which the
original cannot decrypt; they are written as stored and counted). Content stored in
plain text or encrypted with a Fernet ``EncryptionManager`` reads and decrypts there as
here.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import UTC, date
from pathlib import Path

from comply_lab._time import TimeLike, day_end, day_start, to_range
from comply_lab.crypto.ciphertext import PREFIX
from comply_lab.errors import ConfigurationError, StorageError
from comply_lab.model.entry import AuditEntry
from comply_lab.storage.base import Storage
from comply_lab.storage.scan import entries_between
from comply_lab.storage.segments import jsonl_name

_CONTENT = ("input_content", "output_content")


@dataclass
class ExportReport:
    """What an export wrote.

    Attributes:
        directory: Where the day files are.
        files: The day files written, oldest first.
        entries: How many entries they hold.
        key_ring_content: How many entries hold content encrypted with a key ring, which
            the original tool cannot decrypt (exported as stored).
    """

    directory: Path
    files: list[str] = field(default_factory=list)
    entries: int = 0
    key_ring_content: int = 0


def export_original(
    storage: Storage,
    directory: str | os.PathLike[str],
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> ExportReport:
    """Write the entries of ``[start, end]`` as the original tool's day files in ``directory``.

    Args:
        storage: The log to export.
        directory: A new or empty folder (created if missing).
        start: First instant exported (None: from the beginning).
        end: Last instant exported (None: to the end; a bare day means its end).

    Returns:
        What was written.

    Raises:
        ConfigurationError: ``directory`` already holds day files (an export never mixes
            with or overwrites a log).
        StorageError: a file cannot be written.
    """
    folder = Path(directory)
    lo, hi = to_range(start, end)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        taken = sorted(p.name for p in folder.glob("audit_*.jsonl"))
    except OSError as err:
        raise StorageError(f"cannot make {folder}: {err.strerror}") from err
    if taken:
        raise ConfigurationError(
            f"{folder} already holds day files ({taken[0]}, ...): export into a new or empty "
            "folder, so nothing is mixed with or overwrites another log"
        )
    report = ExportReport(folder)
    for day in storage.days():
        first = day_start(day) if lo is None else max(day_start(day), lo)
        last = day_end(day) if hi is None else min(day_end(day), hi)
        if first > last:
            continue
        entries = entries_between(storage, first, last)
        if entries:
            report.files.append(_write_day(folder, day, entries, report))
    return report


def _write_day(folder: Path, day: date, entries: list[AuditEntry], report: ExportReport) -> str:
    name = jsonl_name(day, 0)
    lines = []
    for entry in entries:
        values = entry.to_dict()
        values["timestamp"] = entry.timestamp.astimezone(UTC).replace(tzinfo=None).isoformat()
        if any(str(values[side] or "").startswith(PREFIX) for side in _CONTENT):
            report.key_ring_content += 1
        lines.append(json.dumps(values) + "\n")
    try:
        with (folder / name).open("x", encoding="utf-8") as file:
            file.writelines(lines)
    except OSError as err:
        raise StorageError(f"cannot write {folder / name}: {err.strerror}") from err
    report.entries += len(entries)
    return name
