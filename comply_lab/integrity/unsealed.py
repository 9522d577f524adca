"""Unsealed JSONL segments against the heartbeats: what was vouched for, what is pending.

A heartbeat record (signed in a signed log) vouches for the first bytes of each unsealed
segment its store wrote to: their size and SHA-256. Those bytes must still be there,
unchanged; in a signed log, entries after them are signed by nothing yet: ``pending``, an
error whoever wrote them, until a later heartbeat or sealing vouches for them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, NamedTuple

from comply_lab.integrity.lines import classify
from comply_lab.integrity.report import Problem
from comply_lab.model.entry import AuditEntry
from comply_lab.storage.admission import signed_heads
from comply_lab.storage.jsonl import split_lines
from comply_lab.storage.manifest import HEARTBEAT, MANIFEST, RETENTION, SIGNERS, WRITERS
from comply_lab.storage.segments import Segment
from comply_lab.storage.vouchers import Vouchers, vouchers

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


class Admitted(NamedTuple):
    """Whose unsealed entries count, and which chain heads heartbeats signed.

    Attributes:
        vouched: What registrations and adoptions vouch for, and what retention retired.
        heads: The chain heads authentic heartbeats signed: ``(writer_id, seq)`` ->
            ``(entry_hash, when)``.
    """

    vouched: Vouchers = Vouchers()
    heads: Mapping[tuple[str, int], tuple[str, str]] = {}


NOBODY = Admitted()
"""No writer registered, nothing adopted."""


def admitted(trails: Mapping[str, list[dict[str, Any]]]) -> Admitted:
    """Return whose entries count, from the authentic records of every trail, by name."""
    vouched = vouchers(trails[SIGNERS], trails[WRITERS], trails[RETENTION], trails[MANIFEST])
    return Admitted(vouched, signed_heads(trails[HEARTBEAT]))


def head_problem(segment: Segment, entry: AuditEntry, admitted: Admitted) -> Problem | None:
    """Return a finding if a heartbeat signed ``entry``'s place in its chain with another hash."""
    if entry.writer_id is None or entry.seq is None:
        return None
    signed = admitted.heads.get((entry.writer_id, entry.seq))
    if signed is None or signed[0] == entry.entry_hash:
        return None
    return Problem(
        "modified",
        f"the heartbeat of {signed[1]} signed entry {entry.seq} of writer {entry.writer_id} "
        f"as {signed[0][:16]}..., but the stored entry {entry.id} is another: it was "
        "changed or replaced",
        segment.day,
        segment.name,
    )


def pending_problems(
    segment: Segment, data: bytes, vouched: int, admitted: Admitted
) -> list[Problem]:
    """Return what the entries no signed record vouches for are, if there are any.

    Entries of registered writers after the first ``vouched`` bytes (what the newest
    heartbeat vouched for) are ``pending``. Entries of other writers (none, or one no
    signed registration names) are ``unregistered`` wherever they are, unless an adoption
    vouched for their bytes: a heartbeat vouches for what a file holds, whoever appended
    it, so it admits no writer. Sealing quarantines them.
    """
    adopted = data[: admitted.vouched.adopted_prefix(segment.name, data)].count(b"\n")
    beaten = data[:vouched].count(b"\n")
    registered = admitted.vouched.registered
    strangers = pending = retired = 0
    found = []
    for number, line in enumerate(classify(split_lines(data)[0])):
        if line.entry is None:
            continue
        if admitted.vouched.retires(line.entry):
            retired += 1
            continue
        head = head_problem(segment, line.entry, admitted)
        if head is not None:
            found.append(head)
        if line.entry.writer_id in registered:
            pending += number >= beaten
        else:
            strangers += number >= adopted
    since = (
        f"written after the first {vouched:,} bytes, which the newest heartbeat vouched for"
        if vouched
        else "no heartbeat vouched for this segment"
    )
    if pending:
        found.append(
            Problem(
                "pending",
                f"pending: {pending:,} entries not yet signed ({since}), so "
                "anyone who can write the files could have written them: a running writer's "
                "next heartbeat vouches for its own; sealing with the log's key vouches for "
                "whatever its registered writers' chains hold, so seal a stopped writer's "
                "entries only once you know they are its own",
                segment.day,
                segment.name,
            )
        )
    if retired:
        found.append(
            Problem(
                "inserted",
                f"{retired:,} entries are back that recorded retention deleted (their "
                "writers, seqs and day): restored from a copy, or rewritten; readers leave "
                "them out and sealing leaves them out for good",
                segment.day,
                segment.name,
            )
        )
    if strangers:
        found.append(
            Problem(
                "unregistered",
                f"{strangers:,} entries name a writer no signed registration "
                "names: planted, or written by a process that did not register; readers "
                "leave them out and sealing puts them in _quarantine/ (a log of an earlier "
                "version, without a genesis: adopt it once it verifies, comply-lab adopt)",
                segment.day,
                segment.name,
            )
        )
    return found
