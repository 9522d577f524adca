"""Witnesses: keys outside the writer's control that cosign only a log that grew.

The writer's key alone cannot anchor a log: whoever holds it can rewrite history and sign
a fresh checkpoint of the rewrite, or sign a checkpoint back-dated to before an event. A
witness keeps, per log (per checkpoint origin), the last checkpoint it cosigned. It
cosigns a new one (a C2SP ``tlog-cosignature/v1`` line, with the time it signed) only
when the log's signature verifies and the new tree provably extends the one it saw: same
root at the same size, or an RFC 9162 consistency proof from the old size. A checkpoint
smaller than, inconsistent with, or older than what it saw is refused and nothing is
signed. Its state is kept per origin *and* log key, and a log key it cosigns under one
origin is refused under another (unless told the log was renamed): otherwise the key's
holder could start a rewritten history over under a fresh name.

Verification then asks for a quorum: cosignatures by at least ``N`` distinct witness keys
the verifier trusts ([`check_witnesses`][comply_lab.integrity.witness.check_witnesses]; a
key counts once, however many lines it signed). A rewritten history cannot gather them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab._time import utc_now
from comply_lab.crypto.note import (
    COSIGNATURE,
    ED25519,
    Note,
    NoteError,
    Signer,
    Verifier,
    cosignature_time,
)
from comply_lab.crypto.signing import key_id
from comply_lab.errors import IntegrityError, InvalidKeyError, InvalidQueryError
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.integrity.report import Problem
from comply_lab.integrity.tlog import ConsistencyProof
from comply_lab.model.entry import parse_time

FUTURE = timedelta(hours=1)
"""How far ahead of the witness's clock a checkpoint may be dated (clocks differ a little)."""


def _instant(text: object) -> datetime | None:
    """Return a checkpoint's time as an instant (its offset applied), None if unreadable."""
    return parse_time(text) if isinstance(text, str) else None


class WitnessRefusal(IntegrityError):
    """A witness refused to cosign: the checkpoint does not extend what it saw."""


def witness_signer(key: Ed25519PrivateKey, name: str | None = None) -> Signer:
    """Return a witness's cosigner (default name: ``comply-lab-witness/<fingerprint>``)."""
    return Signer(name or f"comply-lab-witness/{key_id(key)}", key, COSIGNATURE)


@dataclass(frozen=True)
class Cosigned:
    """What a witness did: the cosigned checkpoint, and the size it had seen before."""

    checkpoint: Checkpoint
    previous_size: int | None


def cosign(
    checkpoint: Checkpoint,
    signer: Signer,
    state: str | os.PathLike[str],
    log_key: Ed25519PublicKey,
    proof: ConsistencyProof | None = None,
    now: int | None = None,
    *,
    new_origin: bool = False,
) -> Cosigned:
    """Cosign ``checkpoint`` if it extends the last checkpoint of its log this witness saw.

    Args:
        checkpoint: The log's new checkpoint (a signed note).
        signer: The witness's cosigner
            ([`witness_signer`][comply_lab.integrity.witness.witness_signer]).
        state: The witness's folder: one file per log (origin and log key), its last
            cosigned checkpoint.
        log_key: The log's public key; the checkpoint must carry its valid signature.
        proof: A consistency proof from the last cosigned size to this one (from
            ``comply-lab checkpoint --since``); not needed the first time, or when the size
            did not change.
        now: The POSIX time of the cosignature (default: now).
        new_origin: Cosign a first checkpoint under an origin the witness has not seen for
            a log key it already cosigns under another (a log renamed on purpose).

    Raises:
        WitnessRefusal: the log's signature does not verify, the checkpoint is smaller,
            older, or not proven to extend what the witness cosigned before, or it names a
            new origin for a known log key (without ``new_origin``).
    """
    note = _log_signed(checkpoint, log_key)
    dated = _instant(checkpoint.time)
    if dated is not None and dated > utc_now() + FUTURE:
        raise WitnessRefusal(
            f"refused: the checkpoint is dated {checkpoint.time}, ahead of this witness's clock "
            "by more than an hour: cosigning it would make every honest checkpoint after it "
            "look back-dated"
        )
    folder = Path(state)
    folder.mkdir(parents=True, exist_ok=True)
    origin = str(checkpoint.origin)
    seen_file = folder / _state_name(origin, log_key)
    known = sorted(folder.glob(f"*-{key_id(log_key)}.txt"))
    if not new_origin and known and seen_file not in known:
        raise WitnessRefusal(
            f"refused: this witness cosigns the log key {key_id(log_key)} under another origin "
            f"({known[0].name}): a new origin would let the key's holder start its history "
            "over. If the log was renamed on purpose, cosign with --new-origin"
        )
    seen = Checkpoint.load(seen_file) if seen_file.exists() else None
    if seen is not None:
        _extends(seen, checkpoint, proof)
    signed = checkpoint.with_note(note.signed_by(signer, now if now is not None else _now()))
    temporary = seen_file.with_suffix(".tmp")
    temporary.write_text(signed.to_note())
    os.replace(temporary, seen_file)
    return Cosigned(signed, None if seen is None else seen.size)


def _log_signed(checkpoint: Checkpoint, log_key: Ed25519PublicKey) -> Note:
    """Return the checkpoint's note, once the log's own signature on it verifies."""
    if checkpoint.note is None or checkpoint.origin is None or "\n\n" not in checkpoint.note:
        raise WitnessRefusal("only a signed checkpoint note can be witnessed")
    note = Note.parse(checkpoint.note)
    try:
        signed = note.verified_by([Verifier(checkpoint.origin, ED25519, log_key)])
    except NoteError as err:
        raise WitnessRefusal(f"refused: {err}") from None
    if not signed:
        raise WitnessRefusal(
            f"refused: the checkpoint carries no signature of {checkpoint.origin} by the log key "
            "the witness was given"
        )
    return note


def _extends(seen: Checkpoint, new: Checkpoint, proof: ConsistencyProof | None) -> None:
    """Raise unless ``new`` provably extends ``seen`` and is not older."""
    old_size, new_size = int(seen.size or 0), int(new.size or 0)
    if new_size < old_size:
        raise WitnessRefusal(
            f"refused: the checkpoint covers {new_size:,} entries, fewer than the {old_size:,} "
            "already cosigned (the log shrank, or this is an old checkpoint)"
        )
    then, now = _instant(seen.time), _instant(new.time)
    if now is None or (then is not None and now < then):
        raise WitnessRefusal(
            f"refused: the checkpoint is dated {new.time}, before the one cosigned at "
            f"{seen.time} (a back-dated checkpoint), or not dated at all"
        )
    if new_size == old_size:
        if new.tree_root != seen.tree_root:
            raise WitnessRefusal(
                f"refused: same size as the cosigned checkpoint ({new_size:,}) but another root: "
                "the history was rewritten"
            )
        return
    if old_size == 0:
        return  # the empty tree is a prefix of every tree
    expected = (old_size, seen.tree_root, new_size, new.tree_root)
    if proof is None:
        raise WitnessRefusal(
            f"the witness last cosigned {old_size:,} entries: give the consistency proof from "
            "that checkpoint (comply-lab checkpoint --since it)"
        )
    if (proof.old_size, proof.old_root, proof.new_size, proof.new_root) != expected:
        raise WitnessRefusal(
            f"refused: the proof is not from the cosigned checkpoint ({old_size:,} entries) to "
            f"this one ({new_size:,})"
        )
    if not proof.verify():
        raise WitnessRefusal(
            "refused: the consistency proof does not verify: the log does not extend the "
            "checkpoint the witness cosigned (its history was rewritten)"
        )


def _state_name(origin: str, log_key: Ed25519PublicKey) -> str:
    """Return the state file of a log: readable origin, a hash of it, and the log key's id."""
    safe = "".join(c if c.isalnum() or c in "-." else "_" for c in origin)[:80]
    return f"{safe}-{hashlib.sha256(origin.encode()).hexdigest()[:12]}-{key_id(log_key)}.txt"


def _now() -> int:
    return int(utc_now().timestamp())


def witness_verifiers(values: list[str]) -> list[Verifier]:
    """Read witness verifier keys, each given as the key itself or a file holding it.

    Raises:
        InvalidKeyError: one is not a cosignature verifier key.
    """
    verifiers = []
    for value in values:
        text = value
        if "+" not in value and Path(value).is_file():
            text = Path(value).read_text().strip()
        verifier = Verifier.parse(text)
        if verifier.kind != COSIGNATURE:
            raise InvalidKeyError(
                f"{verifier.name}'s key is not a witness (cosignature) key: pass the key "
                "`comply-lab witness` printed"
            )
        verifiers.append(verifier)
    return verifiers


def check_witnesses(
    checkpoint: Checkpoint, verifiers: list[Verifier], quorum: int
) -> tuple[list[Problem], list[tuple[str, int]]]:
    """Return the problems of a checkpoint short of ``quorum`` witness cosignatures.

    Also returns each valid cosignature's witness name and time.

    Raises:
        InvalidQueryError: ``quorum`` is not between 1 and the number of keys given.
    """
    distinct = list({verifier.vkey(): verifier for verifier in verifiers}.values())
    if not 1 <= quorum <= len(distinct):
        raise InvalidQueryError(
            f"--witnesses {quorum} needs between 1 and {len(distinct)} (the distinct witness "
            "keys given)"
        )
    cosigned: dict[str, tuple[str, int]] = {}
    if checkpoint.note is not None and "\n\n" in checkpoint.note:
        try:
            found = Note.parse(checkpoint.note).verified_by(distinct)
        except NoteError as err:
            return [Problem("bad_signature", f"the checkpoint: {err}", segment="checkpoint")], []
        for verifier, signature in found:  # a key counts once, however many lines it signed
            cosigned.setdefault(verifier.vkey(), (verifier.name, cosignature_time(signature)))
    if len(cosigned) >= quorum:
        return [], list(cosigned.values())
    detail = (
        f"the checkpoint carries valid cosignatures of {len(cosigned)} of the {len(distinct)} "
        f"witness key(s) given, {quorum} required: no quorum of witnesses saw this history"
    )
    return [Problem("unwitnessed", detail, segment="checkpoint")], list(cosigned.values())
