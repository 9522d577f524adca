"""Checkpoints: a small signed statement of the log's size and root, kept elsewhere.

No check inside a log can reveal that its newest segments *and* their manifest records
were removed: what is left is a shorter, consistent log. A checkpoint saved somewhere else
(a ticket, an email, another bucket) records how many manifest records existed, how many
entries they covered and the RFC 6962 root over their record hashes, and the length and
head (last ``record_hash``) of every other trail — holds, retention, access, keys,
shredding, heartbeats. Verifying the log against it later proves that history and every
trail were only ever appended to: a removed hold record, a truncated access trail or a
rewritten retention record no longer matches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab.crypto.merkle import MerkleBuilder, digest_bytes
from comply_lab.crypto.signing import key_id, sign, signature_valid
from comply_lab.errors import IntegrityError, InvalidQueryError, NothingSealedError
from comply_lab.integrity.authority import authority
from comply_lab.integrity.report import Problem
from comply_lab.integrity.trails import check_trail
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.base import Storage
from comply_lab.storage.manifest import MANIFEST, SIGNERS, TRAILS

FORMAT = "comply-lab-checkpoint/2"
_FORMATS = ("comply-lab-checkpoint/1", FORMAT)  # /1 checkpoints carry no trail heads


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of how much sealed history a log had at a time.

    Attributes:
        records: Manifest records covered.
        entries: Entries in the segments of those records.
        root: Hex RFC 6962 root over the covered records' ``record_hash`` values.
        head: ``record_hash`` of the last covered record.
        time: When the checkpoint was made (ISO 8601, UTC).
        key_id: Fingerprint of the signing key, if signed.
        signature: Base64 Ed25519 signature over the other fields, if signed.
        format: Format tag.
        trails: For every other trail, ``[records, head]``: how many records it had and
            the ``record_hash`` of the last one.
    """

    records: int
    entries: int
    root: str
    head: str | None
    time: str
    key_id: str | None = None
    signature: str | None = None
    format: str = FORMAT
    trails: dict[str, list[Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the checkpoint as one line of JSON, to store anywhere."""
        return json.dumps(asdict(self), sort_keys=True)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the checkpoint to a file."""
        Path(path).write_text(self.to_json() + "\n")

    @classmethod
    def load(cls, value: Checkpoint | dict[str, Any] | str | os.PathLike[str]) -> Checkpoint:
        """Read a checkpoint from an object, a dict, a JSON string or a file.

        Raises:
            InvalidQueryError: it is not a comply_lab checkpoint.
        """
        if isinstance(value, Checkpoint):
            return value
        data: Any = value
        if isinstance(value, str | os.PathLike) and not str(value).lstrip().startswith("{"):
            try:
                data = Path(value).read_text()
            except (OSError, ValueError) as err:
                reason = getattr(err, "strerror", None) or str(err)
                raise InvalidQueryError(f"cannot read checkpoint {value!r}: {reason}") from None
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                data = None
        if not isinstance(data, dict) or data.get("format") not in _FORMATS:
            raise InvalidQueryError(
                "not a comply_lab checkpoint: pass what log.checkpoint() returned (its JSON, "
                "a file holding it, or the object)"
            )
        try:
            checkpoint = cls(**data)
        except TypeError:
            raise InvalidQueryError("the checkpoint has unknown or missing fields") from None
        if not checkpoint._well_typed():
            raise InvalidQueryError("the checkpoint's fields have the wrong types; it is damaged")
        return checkpoint

    def _well_typed(self) -> bool:
        def count(value: object) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 0

        optional = (self.head, self.key_id, self.signature)
        return (
            count(self.records)
            and count(self.entries)
            and all(isinstance(v, str) for v in (self.root, self.time))
            and all(v is None or isinstance(v, str) for v in optional)
            and isinstance(self.trails, dict)
            and all(
                isinstance(name, str)
                and isinstance(pair, list)
                and len(pair) == 2
                and count(pair[0])
                and (pair[1] is None or isinstance(pair[1], str))
                for name, pair in self.trails.items()
            )
        )

    def signed_bytes(self) -> bytes:
        """Return the bytes the signature covers (``trails`` is left out of /1 checkpoints)."""
        body = {k: v for k, v in asdict(self).items() if k != "signature"}
        if self.format != FORMAT:
            body.pop("trails")
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def _root(records: Sequence[dict[str, Any]]) -> tuple[str, int]:
    builder = MerkleBuilder()
    entries = 0
    for record in records:
        builder.add(digest_bytes(str(record.get("record_hash", ""))))
        entries += int(record.get("entries") or 0)
    return builder.root().hex(), entries


def make_checkpoint(
    records: Sequence[dict[str, Any]],
    signing_key: Ed25519PrivateKey | None = None,
    trails: Mapping[str, tuple[int, str | None]] | None = None,
) -> Checkpoint:
    """Return a checkpoint over manifest records and trail heads, signed if a key is given.

    Args:
        records: The manifest records, in order.
        signing_key: Signs the checkpoint.
        trails: Each other trail's ``(records, head)``.
    """
    root, entries = _root(records)
    checkpoint = Checkpoint(
        records=len(records),
        entries=entries,
        root=root,
        head=records[-1].get("record_hash") if records else None,
        time=format_timestamp(datetime.now(UTC)),
        key_id=key_id(signing_key) if signing_key is not None else None,
        trails={name: [length, head] for name, (length, head) in (trails or {}).items()},
    )
    if signing_key is None:
        return checkpoint
    return Checkpoint(
        **{**asdict(checkpoint), "signature": sign(signing_key, checkpoint.signed_bytes())}
    )


def take_checkpoint(storage: Storage, signing_key: Ed25519PrivateKey | None = None) -> Checkpoint:
    """Return a checkpoint of a store's manifest and trails, once they verify.

    A checkpoint vouches for what it covers, so every trail is checked first (canonical
    form, record hashes, chain and — when the log is signed and a key is given — every
    record's signature, with that key's public half).

    Raises:
        NothingSealedError: nothing is sealed yet, so it would cover no entry.
        IntegrityError: a trail does not verify.
    """
    data = {name: storage.read_metadata(name) for name in TRAILS}
    trails = [check_trail(data[name], name, None) for name in TRAILS]
    if signing_key is not None and any(t.signed for t in trails):
        keys = authority(data[SIGNERS], signing_key).keys
        trails = [check_trail(data[name], name, keys) for name in TRAILS]
    heads: dict[str, tuple[int, str | None]] = {}
    records: list[dict[str, Any]] = []
    for trail in trails:
        errors = [p for p in trail.problems if p.severity == "error"]
        if errors:
            raise IntegrityError(
                f"{trail.name} does not verify ({errors[0].line()}), and a checkpoint would "
                "vouch for it: verify the log and restore the trail first"
            )
        if trail.name == MANIFEST:
            records = trail.records
        else:
            heads[trail.name] = (len(trail.hashes), trail.head)
    if not records:
        raise NothingSealedError(
            f"nothing in {storage} is sealed yet, so a checkpoint would cover no entry: seal "
            "it first (comply-lab compact, log with format='parquet', or flush an S3 log) and "
            "take the checkpoint then"
        )
    return make_checkpoint(records, signing_key, heads)


def check_checkpoint(
    checkpoint: Checkpoint,
    records: Sequence[dict[str, Any]],
    keys: Mapping[str, Ed25519PublicKey] | None,
    trails: Mapping[str, Sequence[str | None]] | None = None,
) -> list[Problem]:
    """Return the problems of a log against a saved checkpoint.

    Args:
        checkpoint: The checkpoint.
        records: The log's manifest records, in order.
        keys: The keys that may sign it (the writer's and its declared operators'); its
            signature is checked when given.
        trails: Each trail's ``record_hash`` values, line by line.
    """
    problems = []
    if keys is not None:
        key = keys.get(checkpoint.key_id) if checkpoint.key_id is not None else None
        if checkpoint.signature is None:
            problems.append(
                Problem("bad_signature", "the checkpoint is not signed", segment="checkpoint")
            )
        elif key is None or not signature_valid(
            key, checkpoint.signed_bytes(), checkpoint.signature
        ):
            problems.append(
                Problem(
                    "bad_signature",
                    f"the checkpoint's signature (key {checkpoint.key_id}) does not verify with "
                    "the given key or an operator key the log declares",
                    segment="checkpoint",
                )
            )
    if len(records) < checkpoint.records:
        problems.append(
            Problem(
                "missing",
                f"the log has {len(records)} manifest records but the checkpoint of "
                f"{checkpoint.time} covers {checkpoint.records} ({checkpoint.entries:,} entries): "
                "the newest sealed segments and their records were removed (truncation)",
                segment=MANIFEST,
            )
        )
        return problems
    root, entries = _root(records[: checkpoint.records])
    if root != checkpoint.root or entries != checkpoint.entries:
        problems.append(
            Problem(
                "modified",
                f"the first {checkpoint.records} manifest records differ from the checkpoint of "
                f"{checkpoint.time}: sealed history was rewritten",
                segment=MANIFEST,
            )
        )
    problems += check_heads(checkpoint.trails, trails or {}, f"the checkpoint of {checkpoint.time}")
    return problems


def check_heads(
    seen: Mapping[str, Sequence[Any]], trails: Mapping[str, Sequence[str | None]], by: str
) -> list[Problem]:
    """Return the problems of trails that do not extend what ``by`` saw of them.

    Trails only ever grow, so each must still hold at least the ``records`` seen, the
    last of them with the ``head`` seen.

    Args:
        seen: Per trail, ``[records, head]`` as a checkpoint or heartbeat recorded them.
        trails: Each trail's ``record_hash`` values now, line by line.
        by: Who saw them, for the explanation ("the checkpoint of ...").
    """
    problems = []
    for name, (length, head) in sorted(seen.items()):
        hashes = trails.get(name, [])
        if len(hashes) < length:
            problems.append(
                Problem(
                    "missing",
                    f"the trail has {len(hashes)} records, but {by} saw {length}: records "
                    "were removed",
                    segment=name,
                )
            )
        elif length and hashes[length - 1] != head:
            problems.append(
                Problem(
                    "modified",
                    f"its first {length} records differ from those {by} saw: the trail "
                    "was rewritten",
                    segment=name,
                )
            )
    return problems
