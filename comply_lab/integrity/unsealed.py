"""Unsealed JSONL segments against the heartbeats: what was vouched for, what is pending.

A heartbeat record (signed in a signed log) vouches for the first bytes of each unsealed
segment its store wrote to: their size and SHA-256. Those bytes must still be there,
unchanged; in a signed log, entries after them are signed by nothing yet: ``pending``, an
error whoever wrote them, until a later heartbeat or sealing vouches for them.
"""

from __future__ import annotations

import hashlib

from comply_lab.integrity.lines import classify
from comply_lab.integrity.report import Problem
from comply_lab.storage.jsonl import split_lines
from comply_lab.storage.segments import Segment

Snapshot = tuple[int, str, str]
"""What a heartbeat vouched for of an unsealed segment: its first N bytes, their SHA-256, when."""


def snapshot_problem(segment: Segment, data: bytes, snapshot: Snapshot) -> Problem | None:
    """Return what became of the bytes a heartbeat vouched for (None: they are intact)."""
    size, digest, at = snapshot
    if len(data) >= size and hashlib.sha256(data[:size]).hexdigest() == digest:
        return None
    cut = len(data) < size
    return Problem(
        "missing" if cut else "modified",
        f"the heartbeat of {at} vouched for the first {size:,} bytes of this segment, "
        + (f"but it holds only {len(data):,}" if cut else "and they were changed"),
        segment.day,
        segment.name,
    )


def pending_problem(segment: Segment, data: bytes, vouched: int) -> Problem | None:
    """Return ``pending`` for the entries after the first ``vouched`` bytes, if there are any."""
    unsigned = sum(line.entry is not None for line in classify(split_lines(data[vouched:])[0]))
    if not unsigned:
        return None
    since = (
        f"written after the first {vouched:,} bytes, which the newest heartbeat vouched for"
        if vouched
        else "no heartbeat vouched for this segment"
    )
    return Problem(
        "pending",
        f"pending: {unsigned:,} entries not yet signed ({since}), so anyone who can write "
        "the files could have written them: a running writer's next heartbeat vouches for "
        "its own; sealing with the log's key vouches for whatever they are, so seal a "
        "stopped writer's entries only once you know they are its own",
        segment.day,
        segment.name,
    )
