"""Taking over a log that exists: what adoption writes once someone vouched for the log.

See [`comply_lab.storage.genesis`][comply_lab.storage.genesis] for the records, and
[`comply_lab.integrity.adoption`][comply_lab.integrity.adoption] for adoption itself
(which verifies the log first).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab._time import utc_now
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.base import Storage
from comply_lab.storage.genesis import (
    ADOPTION,
    geneses,
    genesis_record,
    registered,
    registration_record,
)
from comply_lab.storage.heartbeat import Heartbeat
from comply_lab.storage.jsonl import summarize_jsonl
from comply_lab.storage.manifest import MANIFEST, SIGNERS, TRAILS, WRITERS, trail_head
from comply_lab.storage.signers import trail_records


@dataclass
class Adoption:
    """What adopting a log did.

    Attributes:
        origin: The log's origin, from its genesis.
        genesis: Whether a genesis record was written (False: it had one).
        writers: Writers registered now.
        vouched: Unsealed segments the final heartbeat vouched for, with their sizes.
    """

    origin: str
    genesis: bool = False
    writers: list[str] = field(default_factory=list)
    vouched: dict[str, int] = field(default_factory=dict)


def take_over(
    storage: Storage, key: Ed25519PrivateKey, origin: str | None, heartbeat_s: float | None
) -> Adoption:
    """Write what adoption writes, signed by the store's key ``key`` (the log's root).

    That is the genesis (unless there is one), a registration per writer the log's
    entries name, an adoption record by which the root vouches for the bytes of every
    unsealed segment (lines of the original tool name no writer: this is what admits
    them) and for the records every trail holds (those written without a key then count
    unsigned), and a final heartbeat. This vouches
    for what the log holds now: callers check the log first
    (``comply_lab.integrity.adoption.adopt``), or take over a log with no signature at
    all, which nothing proves either way (compaction).
    """
    heads = {
        name: list(trail_head(storage.read_metadata(name))) for name in TRAILS if name != SIGNERS
    }
    present = geneses(trail_records(storage, SIGNERS))
    first = present[0] if present else genesis_record(key, origin, heartbeat_s)
    done = Adoption(str(first["origin"]))
    if not present:
        storage.append_metadata(SIGNERS, first)
        done.genesis = True
    known = registered(trail_records(storage, WRITERS))
    snapshots: dict[str, list[Any]] = {}
    writers: set[str] = set()
    for record in trail_records(storage, MANIFEST):
        writers.update(str(w) for w in record.get("writers") or {})
    for day in storage.days():
        for segment in storage.segments(day):
            if segment.sealed:
                continue
            try:
                data = storage.read_segment(segment)
            except FileNotFoundError:
                continue
            writers.update(summarize_jsonl(data)[1])
            snapshots[segment.name] = [len(data), hashlib.sha256(data).hexdigest()]
            done.vouched[segment.name] = len(data)
    for writer in sorted(writers - known):
        storage.append_metadata(WRITERS, registration_record(writer, adopted=True))
        done.writers.append(writer)
    adoption = {
        "kind": ADOPTION,
        "at": format_timestamp(utc_now()),
        "unsealed": snapshots,
        "trails": {name: head for name, head in heads.items() if head[0]},
    }
    storage.append_metadata(SIGNERS, adoption)
    Heartbeat(storage, lambda: snapshots, heartbeat_s).beat(final=True)
    return done
