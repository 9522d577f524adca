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


def pending_problems(
    segment: Segment, data: bytes, vouched: int, registered: frozenset[str]
) -> list[Problem]:
    """Return what the entries after the first ``vouched`` bytes are, if there are any.

    Those of registered writers are ``pending``; the others (no writer, or one no signed
    registration names) are ``unregistered``: sealing quarantines them.
    """
    lines = classify(split_lines(data[vouched:])[0])
    unsigned = [line.entry for line in lines if line.entry is not None]
    strangers = sum(e.writer_id not in registered for e in unsigned)
    since = (
        f"written after the first {vouched:,} bytes, which the newest heartbeat vouched for"
        if vouched
        else "no heartbeat vouched for this segment"
    )
    found = []
    if len(unsigned) > strangers:
        found.append(
            Problem(
                "pending",
                f"pending: {len(unsigned) - strangers:,} entries not yet signed ({since}), so "
                "anyone who can write the files could have written them: a running writer's "
                "next heartbeat vouches for its own; sealing with the log's key vouches for "
                "whatever its registered writers' chains hold, so seal a stopped writer's "
                "entries only once you know they are its own",
                segment.day,
                segment.name,
            )
        )
    if strangers:
        found.append(
            Problem(
                "unregistered",
                f"{strangers:,} entries ({since}) name a writer no signed registration "
                "names: planted, or written by a process of an earlier version (adopt the "
                "log once it verifies: comply-lab adopt); sealing leaves them out, in "
                "_quarantine/",
                segment.day,
                segment.name,
            )
        )
    return found
