"""The splice test: pieces of an attacker's copy, spliced into an honest log.

An honest log is taken through every documented operation (logging from several writers,
sealing, reopening, holds, releases, retention, decryption, key rotation, shredding,
deletion, compaction) with the root key. The attacker builds a copy of their own with the
tool itself: the same history under a key of their own, again with no key at all, and
once more without a key and then adopted under their key (genesis, registrations and an
adoption record signed by it).
Then, many times over, files and records taken from a copy are spliced into the honest
log, and it is verified with the pinned root (``verify(public_key=root)``, whose origin is
the root's). The one property: verification says OK only if every reader still returns
what the honest log does.

``COMPLY_LAB_SPLICES`` sets the splices per history (``make tamper`` runs many more).
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from comply_lab import open_log
from comply_lab.crypto.signing import generate_signing_key
from comply_lab.integrity.adoption import adopt
from tests.tamper import (
    KEY,
    OPERATIONS,
    Case,
    Files,
    History,
    build,
    editable,
    restore,
    snapshot,
)

SPLICES = int(os.environ.get("COMPLY_LAB_SPLICES", "30"))
ATTACKER = generate_signing_key()


def _history(backend: str, root: Path, key: Any, seed: int, endpoint: str | None) -> Case:
    """Build a log and take it through every operation, in an order fixed by ``seed``."""
    case = build(backend, root, endpoint, days=0, key=key)
    rng = random.Random(seed)
    operations = ["log", *rng.sample(OPERATIONS, len(OPERATIONS)), "log", "hold", "log"]
    history = History(case, rng, root, key=key)
    history.run(operations)
    history.close()
    return case


def view(case: Case) -> dict[str, Any]:
    """Return what readers show of a log: entries, their count, holds and trail events."""
    log = open_log(case.target, progress=False, public_key=KEY.public_key())
    entries = log.entries(columns=["id", "entry_hash", "timestamp", "model", "safety_passed"])
    return {
        "entries": sorted(map(tuple, entries.astype(str).itertuples(index=False))),
        "len": len(log),
        "holds": sorted(log.holds()["name"]),
        "access": len(log.access_events()),
        "retention": len(log.retention_events()),
    }


def _trails(files: Files) -> list[str]:
    """Return the names of the trails a log holds (``_holds``, ``_manifest``, ...)."""
    skip = ("_sealed", "_quarantine", "_staging", "_spool", "_idindex")
    return sorted(
        {
            n.split("/")[0].removesuffix(".jsonl")
            for n in files.names()
            if n.startswith("_") and n.endswith(".jsonl") and not n.startswith(skip)
        }
    )


@dataclass
class Splice:
    """Pieces of a copy put into the honest log: whole files, or single records."""

    kind: str
    pieces: list[str]

    def __str__(self) -> str:
        return f"{self.kind}: {', '.join(self.pieces)}"


def splices(honest: Files, copy: Files, rng: random.Random, count: int) -> Iterator[Splice]:
    """Yield random splices of ``copy`` into ``honest``, applying each (the caller undoes it)."""
    names = editable(copy)
    trails = _trails(copy)
    for _ in range(count):
        kind = rng.choice(["file", "files", "record", "record"])
        if kind == "record" and trails:
            trail = rng.choice(trails)
            lines = copy.trail_lines(trail)
            if not lines:
                continue
            line = rng.choice(lines)
            ours = honest.trail_lines(trail)
            at = rng.randrange(len(ours) + 1)
            honest.set_trail_lines(trail, [*ours[:at], line, *ours[at:]])
            yield Splice("record", [f"{trail} line {lines.index(line) + 1} at {at + 1}"])
            continue
        chosen = rng.sample(names, min(len(names), 1 if kind == "file" else rng.randrange(2, 4)))
        for name in chosen:
            honest.write(name, copy.read(name))
        yield Splice(kind, chosen)


@pytest.mark.parametrize("backend", ["jsonl", "parquet"])
@pytest.mark.parametrize("seed", [1, 2])
def test_nothing_spliced_in_verifies_unless_readers_see_the_honest_log(
    tmp_path: Path, backend: str, seed: int
):
    """Files or records of the attacker's copies: OK only when every reader is unchanged."""
    _splice(tmp_path, backend, seed, None)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["s3-jsonl", "s3-parquet"])
def test_nothing_spliced_into_an_s3_log_verifies(tmp_path: Path, backend: str, s3_endpoint: str):
    """The same on S3: objects and records of the attacker's copies, in the honest prefix."""
    _splice(tmp_path, backend, 3, s3_endpoint, max(SPLICES // 5, 1))


def _splice(
    tmp_path: Path, backend: str, seed: int, endpoint: str | None, count: int = SPLICES
) -> None:
    honest = _history(backend, tmp_path / "honest", KEY, seed, endpoint)
    report = honest.verify()
    assert report.ok, str(report)
    expected = view(honest)
    saved = snapshot(honest.files)
    rng = random.Random(seed)
    tried = passed = 0
    for name, key in (("attacker", ATTACKER), ("keyless", None), ("adopted", None)):
        copy = _history(backend, tmp_path / name, key, seed, endpoint)
        if name == "adopted":  # an unsigned copy adopted under the attacker's key
            adopt(copy.storage(signing_key=ATTACKER))
        for splice in splices(honest.files, copy.files, rng, count):
            try:
                report = honest.verify()
                tried += 1
                if report.ok:
                    passed += 1
                    assert view(honest) == expected, f"{name} {splice}: OK, but readers changed"
            finally:
                restore(honest.files, saved)
        shutil.rmtree(tmp_path / name)
    assert tried >= count and passed < tried  # the splices were real, and caught
