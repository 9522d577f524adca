"""The genesis and registrations as verification sees them.

Verification with a pinned key (see [`comply_lab.storage.genesis`][comply_lab.storage.genesis])
requires a genesis record the root signed, naming the pinned origin; without one the log
is ``unregistered`` (verdict ``PENDING``): it may be a log of an earlier version, or the
original tool's, or a signed log replaced by one its attacker made. A genesis signed by
any other key counts for nothing. What sealing quarantined (entries of writers nobody
registered) is reported ``quarantined``.
"""

from __future__ import annotations

from typing import Any

from comply_lab.integrity.report import Problem
from comply_lab.integrity.trails import Trail
from comply_lab.storage.genesis import geneses
from comply_lab.storage.manifest import SIGNERS


def genesis_problems(trails: dict[str, Trail], origin: str | None) -> list[Problem]:
    """Return what is wrong with the genesis of a log checked under its pinned root.

    ``trails`` were checked under the root, so their records are authentic; ``origin``
    is the origin the verifier pinned.
    """
    found = geneses(trails[SIGNERS].records)
    if not found:
        return [
            Problem(
                "unregistered",
                "no genesis record signed by the pinned key: the log was written by an "
                "earlier version or another tool (adopt it once it verifies: comply-lab "
                "adopt LOG --signing-key KEY), or it is not the log this key signs",
                segment=SIGNERS,
            )
        ]
    problems = []
    named = {str(g["origin"]) for g in found}
    if len(named) > 1:
        problems.append(
            Problem(
                "bad_signature",
                f"the root key signed genesis records naming different origins "
                f"({', '.join(sorted(named))}): two logs were made under one key",
                segment=SIGNERS,
            )
        )
    if origin is not None and found[0]["origin"] != origin:
        problems.append(
            Problem(
                "bad_signature",
                f"the log's genesis names origin {found[0]['origin']!r}, not the pinned "
                f"{origin!r}: give the log's origin (--origin, or its verifier key), or this "
                "is another log of the same key",
                segment=SIGNERS,
            )
        )
    return problems


def promised_cadence(trails: dict[str, Trail]) -> float | None:
    """Return the heartbeat cadence the log's authentic genesis promises, if any."""
    found = geneses(trails[SIGNERS].records)
    every = found[0].get("heartbeat_s") if found else None
    return float(every) if isinstance(every, int | float) and every > 0 else None


def quarantine_problems(manifest: list[dict[str, Any]]) -> list[Problem]:
    """Report what sealing left out because no registration named its writer."""
    problems = []
    for record in manifest:
        counts = record.get("quarantined")
        if not isinstance(counts, dict) or not counts:
            continue
        total = sum(n for n in counts.values() if isinstance(n, int))
        problems.append(
            Problem(
                "quarantined",
                f"sealing left out {total:,} entries of {len(counts)} writer(s) no signed "
                f"registration names ({', '.join(sorted(map(str, counts))[:3])}): planted, "
                "or written by a process of an earlier version; their bytes are kept in "
                f"{record.get('segment')} and are not part of the log",
                segment=str(record.get("segment")),
            )
        )
    return problems
