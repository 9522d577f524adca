"""Checking a chained metadata trail: canonical form, record hashes, the chain, signatures.

Every trail (manifest, retention, holds, access, keys, shredded, heartbeat) is a sequence of
records, each holding the hash of the one before it and, in a signed log, an Ed25519 signature.
A record counts as *authentic* when it is stored in its one canonical form
([`record_line`][comply_lab.storage.manifest.record_line]), matches its ``record_hash`` and —
when a public key is given — carries a valid signature of that key. Only authentic records may
explain anything (a deletion, a hold, an erased key): a forged or edited record is reported and
otherwise ignored. A record that is authentic but does not follow the one before it is kept (it
is genuine; what is wrong is that records around it were removed or reordered, which is
reported).

A line that is not a record at all, at the end of a trail or between two records that
chain to each other, is what a crash in the middle of an append leaves (the append never
returned, and the next one starts a fresh line): it is reported as a warning, since no
record is missing around it. Anywhere else it is ``modified``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from comply_lab.crypto.signing import signature_valid
from comply_lab.integrity.report import Problem
from comply_lab.model.entry import GENESIS_HASH
from comply_lab.storage.manifest import parse_lines, record_hash, record_line, signed_bytes
from comply_lab.storage.signers import Authority


@dataclass
class Trail:
    """What checking one trail found.

    Attributes:
        name: The trail (``_manifest.jsonl``, ``_holds.jsonl``, ...).
        records: The authentic records, in trail order.
        problems: Everything wrong with the trail.
        hashes: The ``record_hash`` each line claims, in order (None where it has none).
        key_ids: The signing key ids its records name.
    """

    name: str
    records: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    hashes: list[str | None] = field(default_factory=list)
    key_ids: set[str] = field(default_factory=set)

    @property
    def head(self) -> str | None:
        """``record_hash`` of the trail's last line (None for an empty trail)."""
        return self.hashes[-1] if self.hashes else None

    @property
    def signed(self) -> bool:
        """Whether any record of the trail carries a signature."""
        return bool(self.key_ids)


def check_trail(
    data: bytes,
    name: str,
    keys: Mapping[str, Ed25519PublicKey] | None,
    adopted: Authority | None = None,
) -> Trail:
    """Check the trail ``name`` holding ``data``.

    With ``keys`` (key id -> public key: the writer's and the operator keys it declared,
    see `comply_lab.integrity.authority`), every record must carry a valid signature of
    one of them — but for the unsigned records the root's adoption vouched for (see
    ``Authority.vouched``: ``adopted``); without, signatures are not checked (the
    verifier then says the log is unverified if any record is signed).
    """
    trail = Trail(name)
    previous = GENESIS_HASH
    torn: list[str] = []  # lines that are not records, since the last record
    lines = list(parse_lines(data))
    vouched = set() if adopted is None else adopted.vouched(name, [r for _, _, r in lines])
    for number, line, record in lines:
        where = f"{name} line {number}"
        if record is None and not _whole_json(line):
            trail.hashes.append(None)
            torn.append(where)
            continue
        if record is None or not isinstance(record.get("record_hash"), str):
            # Whole JSON is no append cut short: it was written by hand.
            trail.hashes.append(None)
            trail.problems.append(
                Problem(
                    "inserted",
                    "a record without a record_hash, which comply_lab never writes: added by "
                    "hand or by other software; no reader acts on it",
                    segment=where,
                )
            )
            continue
        trail.hashes.append(record["record_hash"])
        if torn:
            linked = record.get("prev_record_hash") == previous
            trail.problems += [_not_a_record(place, linked) for place in torn]
            torn = []
        label = record.get("segment") or record.get("date") or record.get("kind") or "record"
        authentic = True
        if record_hash(record) != record["record_hash"]:
            authentic = False
            trail.problems.append(
                Problem(
                    "modified",
                    f"the record for {label} does not match its record_hash: it was edited",
                    segment=where,
                )
            )
        elif line != record_line(record):
            authentic = False
            trail.problems.append(
                Problem(
                    "modified",
                    f"the record for {label} is not stored in its canonical form (a key "
                    "given twice, other spacing or escaping, or bytes after the record)",
                    segment=where,
                )
            )
        if record.get("prev_record_hash") != previous:
            trail.problems.append(
                Problem(
                    "missing",
                    f"the record for {label} does not follow the one "
                    "before it: records were removed or reordered",
                    segment=where,
                )
            )
        previous = record["record_hash"]
        if isinstance(record.get("signer"), str):
            trail.key_ids.add(record["signer"])
        if keys is not None and not (
            "signature" not in record and record["record_hash"] in vouched
        ):
            found = _signature(keys, record, where, label)
            trail.problems += found
            authentic = authentic and not found
        if authentic:
            trail.records.append(record)
    trail.problems += [_not_a_record(place, True) for place in torn]
    return trail


def _not_a_record(where: str, between_linked: bool) -> Problem:
    if between_linked:
        return Problem(
            "unsealed",
            "not a record: the remains of an append cut short by a crash (never "
            "acknowledged; the records around it are intact)",
            segment=where,
        )
    return Problem("modified", "not a valid record any more", segment=where)


def _signature(
    keys: Mapping[str, Ed25519PublicKey], record: dict[str, Any], where: str, label: str
) -> list[Problem]:
    signature, signer = record.get("signature"), record.get("signer")
    if not isinstance(signature, str):
        return [Problem("bad_signature", f"the record for {label} is not signed", segment=where)]
    key = keys.get(signer) if isinstance(signer, str) else None
    if key is None:
        return [
            Problem(
                "bad_signature",
                f"the record for {label} is signed by key {signer}, which is neither the "
                "given key nor an operator key the log's writer declared",
                segment=where,
            )
        ]
    if not signature_valid(key, signed_bytes(record), signature):
        return [
            Problem(
                "bad_signature",
                f"the signature of the record for {label} does not verify (it names key {signer})",
                segment=where,
            )
        ]
    return []


def _whole_json(line: bytes) -> bool:
    """Whether a line is complete JSON (which no append cut short by a crash leaves)."""
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True
