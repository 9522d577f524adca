"""The audit entry, its stored record form and its canonical, hashed serialization.

A stored record is a JSON object with the fields of
[`AuditEntry`][comply_lab.model.entry.AuditEntry]; the timestamp is an ISO 8601 string with
microseconds and ``+00:00``. Records written by comply_lab carry ``hash_key_id`` (see
[`comply_lab.crypto.fingerprint`][comply_lab.crypto.fingerprint]) and four integrity fields:
``writer_id`` and ``seq`` (the writer and its sequence number), ``prev_hash`` (the
``entry_hash`` of the writer's previous entry, 64 zeros for the first) and ``entry_hash``.

``entry_hash`` is the hex SHA-256 of the *canonical serialization*: the record without
``entry_hash``, as compact UTF-8 JSON with keys sorted at every level (orjson's
``OPT_SORT_KEYS``). It depends only on the values, so it can be recomputed from any
format the record is later stored in (JSONL, Parquet).
"""

from __future__ import annotations

import hashlib
import operator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from comply_lab.errors import CorruptRecordError, InvalidEntryError

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first entry of every writer."""

_REQUIRED = ("id", "timestamp", "input_hash", "output_hash")
_ZERO = timedelta(0)


@dataclass(slots=True)
class AuditEntry:
    """One logged AI interaction: a plain value object (changing it changes nothing stored).

    The first seventeen fields are those of the original audit-logging API, in its order.
    ``timestamp`` is always timezone-aware UTC. The integrity fields are None only for
    records written by other tools.

    Attributes:
        id: UUIDv7 (time-ordered) for entries written by comply_lab.
        timestamp: When the interaction was logged, aware UTC.
        input_hash: Hex SHA-256 of the UTF-8 input.
        output_hash: Hex SHA-256 of the UTF-8 output.
        input_content: The input, when content is stored (encrypted when a key is set).
        output_content: The output, likewise.
        provider: AI provider, e.g. ``"openai"``.
        model: Model name, e.g. ``"gpt-4"``.
        conversation_id: Links the entries of one conversation.
        safety_passed: Whether every safety check passed.
        detectors_triggered: Names of the safety detectors that fired.
        block_reason: Why the request was blocked, if it was.
        alerts: Warning messages raised for the interaction.
        latency_ms: Time the interaction took, in milliseconds.
        input_tokens: Tokens in the input, if known.
        output_tokens: Tokens in the output, if known.
        metadata: Free-form JSON metadata.
        hash_key_id: Fingerprint of the key when ``input_hash``/``output_hash`` are
            HMAC-SHA256; None for plain SHA-256.
        writer_id: Id of the writer (one per logger) whose hash chain holds the entry.
        seq: Position of the entry in its writer's chain, from 0.
        prev_hash: ``entry_hash`` of the writer's previous entry.
        entry_hash: SHA-256 of the canonical serialization of the other fields.
    """

    id: str
    timestamp: datetime
    input_hash: str
    output_hash: str
    input_content: str | None = None
    output_content: str | None = None
    provider: str | None = None
    model: str | None = None
    conversation_id: str | None = None
    safety_passed: bool = True
    detectors_triggered: list[str] = field(default_factory=list)
    block_reason: str | None = None
    alerts: list[str] = field(default_factory=list)
    latency_ms: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    hash_key_id: str | None = None
    writer_id: str | None = None
    seq: int | None = None
    prev_hash: str | None = None
    entry_hash: str | None = None

    def __post_init__(self) -> None:
        # The original API takes the timestamp as an ISO string; a naive one means UTC.
        stamp = self.timestamp
        if type(stamp) is datetime and stamp.utcoffset() == _ZERO:
            return
        parsed = parse_time(stamp) if isinstance(stamp, str) else None
        if isinstance(stamp, datetime):
            parsed = stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)
        if parsed is None:
            raise InvalidEntryError(
                "timestamp", f"must be a datetime or an ISO 8601 string, got {stamp!r}"
            )
        self.timestamp = parsed

    def to_dict(self) -> dict[str, Any]:
        """Return the original API's dictionary: its seventeen fields, JSON types only.

        The timestamp is an ISO 8601 string in UTC (``+00:00``). The original tool's
        ``AuditEntry.from_dict`` accepts it, and
        [`from_dict`][comply_lab.model.entry.AuditEntry.from_dict] reads it back. The integrity
        fields are in [`record`][comply_lab.model.entry.AuditEntry.record].
        """
        values = {name: getattr(self, name) for name in ENTRY_FIELDS}
        values["timestamp"] = format_timestamp(self.timestamp)
        return values

    def record(self) -> dict[str, Any]:
        """Return the stored record: every field, integrity fields included (JSON types only).

        ``entry_hash`` is the SHA-256 of this record's canonical form without it
        (`entry_hash`).
        """
        values = {name: getattr(self, name) for name in _FIELD_NAMES}
        values["timestamp"] = format_timestamp(self.timestamp)
        return values

    def __eq__(self, other: object) -> bool:
        """Compare every field; with the original tool's entry, its seventeen fields.

        An entry of the original tool (any object with its ``to_dict()``) equals ours when
        its fields do, its ISO timestamp read as ours reads it (naive means UTC).
        """
        if isinstance(other, AuditEntry):
            return _values(self) == _values(other)
        to_dict = getattr(other, "to_dict", None)
        if not callable(to_dict) or not hasattr(other, "input_hash"):
            return NotImplemented
        try:
            theirs = AuditEntry.from_dict(to_dict())
        except (CorruptRecordError, InvalidEntryError, TypeError):
            return False
        return self.to_dict() == theirs.to_dict()

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> AuditEntry:
        """Build an entry from a stored record (ours or the original tool's).

        Naive timestamps, as the original tool wrote them, are read as UTC. Keys that are
        not entry fields are ignored.

        Raises:
            CorruptRecordError: a required field is missing or has the wrong type.
        """
        if record.keys() == _FIELD_SET and type(record["latency_ms"]) is float:
            # Fast path: a complete record as comply_lab writes it.
            stamp = record["timestamp"]
            parsed = parse_time(stamp) if type(stamp) is str else None
            if parsed is not None:
                # Positional construction is several times faster than keywords here.
                values = _IN_FIELD_ORDER(record)
                _check_types(values)
                return cls(values[0], parsed, *values[2:])
        return cls._from_partial(record)

    @classmethod
    def _from_partial(cls, record: dict[str, Any]) -> AuditEntry:
        missing = [name for name in _REQUIRED if name not in record]
        if missing:
            raise CorruptRecordError(f"record lacks required field(s) {', '.join(missing)}")
        values = {name: record[name] for name in _FIELD_NAMES if name in record}
        stamp = values["timestamp"]
        parsed = parse_time(stamp) if isinstance(stamp, str) else None
        if parsed is None:
            raise CorruptRecordError(f"timestamp {stamp!r} is not an ISO 8601 string")
        values["timestamp"] = parsed
        for name in ("detectors_triggered", "alerts"):
            if values.get(name) is None:
                values[name] = []
        if values.get("metadata") is None:
            values["metadata"] = {}
        latency = values.get("latency_ms")
        if isinstance(latency, int) and not isinstance(latency, bool):
            values["latency_ms"] = float(latency)
        entry = cls(**values)
        _check_types(_values(entry))
        return entry


_FIELD_NAMES = tuple(f.name for f in fields(AuditEntry))
_NONE: type = type(None)
_TEXT: frozenset[type] = frozenset({str})
_OPTIONAL_TEXT: frozenset[type] = frozenset({str, _NONE})
_OPTIONAL_INT: frozenset[type] = frozenset({int, _NONE})
_ALLOWED: dict[str, frozenset[type]] = {
    "id": _TEXT,
    "timestamp": frozenset({str, datetime}),
    "input_hash": _TEXT,
    "output_hash": _TEXT,
    "input_content": _OPTIONAL_TEXT,
    "output_content": _OPTIONAL_TEXT,
    "provider": _OPTIONAL_TEXT,
    "model": _OPTIONAL_TEXT,
    "conversation_id": _OPTIONAL_TEXT,
    "safety_passed": frozenset({bool}),
    "detectors_triggered": frozenset({list}),
    "block_reason": _OPTIONAL_TEXT,
    "alerts": frozenset({list}),
    "latency_ms": frozenset({float}),
    "input_tokens": _OPTIONAL_INT,
    "output_tokens": _OPTIONAL_INT,
    "metadata": frozenset({dict}),
    "hash_key_id": _OPTIONAL_TEXT,
    "writer_id": _OPTIONAL_TEXT,
    "seq": _OPTIONAL_INT,
    "prev_hash": _OPTIONAL_TEXT,
    "entry_hash": _OPTIONAL_TEXT,
}
_TYPES = tuple((i, name, _ALLOWED[name]) for i, name in enumerate(_FIELD_NAMES))
_LISTS = tuple(_FIELD_NAMES.index(name) for name in ("detectors_triggered", "alerts"))
_CHECKED: set[tuple[type, ...]] = set()
"""Field type signatures already found valid (records of one log share a handful)."""
_MAX_CHECKED = 4096


def _check_types(values: tuple[Any, ...]) -> None:
    """Raise CorruptRecordError unless every field has a type the log can hold."""
    signature = tuple(map(type, values))
    if signature not in _CHECKED:
        for i, name, allowed in _TYPES:
            if signature[i] not in allowed:
                raise CorruptRecordError(
                    f"field {name} holds a {signature[i].__name__}, which no entry has"
                )
        if len(_CHECKED) < _MAX_CHECKED:
            _CHECKED.add(signature)
    for i in _LISTS:
        if values[i] and any(type(item) is not str for item in values[i]):
            raise CorruptRecordError(f"field {_TYPES[i][1]} must hold strings only")


def _values(entry: AuditEntry) -> tuple[Any, ...]:
    """Return an entry's field values in order, without copying them."""
    return tuple(getattr(entry, name) for name in _FIELD_NAMES)


_FIELD_SET = frozenset(_FIELD_NAMES)
_IN_FIELD_ORDER = operator.itemgetter(*_FIELD_NAMES)
CONTENT_FIELDS = ("input_content", "output_content")
"""The stored content, plain or encrypted (bound to the entry by its fingerprints)."""
IDENTITY_FIELDS = ("id", "timestamp")
"""What names an entry and places it in time."""
FINGERPRINT_FIELDS = ("input_hash", "output_hash")
"""The fingerprints of the content (SHA-256, or HMAC with a hash key)."""
CALL_FIELDS = (
    "provider",
    "model",
    "conversation_id",
    "safety_passed",
    "detectors_triggered",
    "block_reason",
    "alerts",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "metadata",
)
"""What a caller tells ``log()`` about the call, beside its input and output."""
CHAIN_FIELDS = ("hash_key_id", "writer_id", "seq", "prev_hash", "entry_hash")
"""What binds the entry into its writer's hash chain (and names its fingerprint key)."""
ENTRY_FIELDS = (*IDENTITY_FIELDS, *FINGERPRINT_FIELDS, *CONTENT_FIELDS, *CALL_FIELDS)
"""The fields a caller provides or that ``log()`` derives, in the original API's order."""
if (*ENTRY_FIELDS, *CHAIN_FIELDS) != _FIELD_NAMES:  # pragma: no cover - a definition error
    raise TypeError("the field groups of AuditEntry do not list its fields in order")


def parse_time(text: str) -> datetime | None:
    """Parse a stored timestamp as aware UTC (naive means UTC); None if it is not ISO 8601."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed if parsed.utcoffset() == _ZERO else parsed.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """Format an aware UTC datetime the way records store it."""
    return value.isoformat(timespec="microseconds")


_OUTSIDE_HASH = frozenset({"entry_hash", *CONTENT_FIELDS})


def canonical_bytes(record: dict[str, Any]) -> bytes:
    """Return the canonical serialization of a record.

    ``entry_hash`` and the stored content are left out. Content is bound by its
    fingerprints (``input_hash``, ``output_hash``), which are in, and — when encrypted — by
    the cipher's authentication; keeping the ciphertext out of the chain lets keys be
    rotated or destroyed later without touching any entry hash.
    """
    return orjson.dumps(
        {k: v for k, v in record.items() if k not in _OUTSIDE_HASH}, option=orjson.OPT_SORT_KEYS
    )


def entry_hash(record: dict[str, Any]) -> str:
    """Return the hex SHA-256 of a record's canonical serialization."""
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


def encode_line(
    record: dict[str, Any], input_content: str | None, output_content: str | None
) -> tuple[str, bytes]:
    """Hash a record (given without content or ``entry_hash``); return the hash and its line.

    The line is the canonical serialization followed by ``entry_hash`` and then the content
    fields, so it is produced with one serialization and the hashed bytes are a prefix of the
    stored ones. This is the one *canonical line* of an entry: verification accepts a stored
    line only if it is exactly these bytes (see
    [`line_problem`][comply_lab.model.entry.line_problem]).
    """
    body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(body).hexdigest()
    return digest, _assemble(body, digest, input_content, output_content) + b"\n"


def _assemble(body: bytes, digest: str, input_content: object, output_content: object) -> bytes:
    return b"".join(
        (
            body[:-1],
            b',"entry_hash":"',
            digest.encode(),
            b'","input_content":',
            b"null" if input_content is None else orjson.dumps(input_content),
            b',"output_content":',
            b"null" if output_content is None else orjson.dumps(output_content),
            b"}",
        )
    )


def line_problem(line: bytes, record: dict[str, Any]) -> str | None:
    """Say what is wrong with a stored JSONL line of a hashed entry; None if nothing is.

    ``record`` is the line parsed. The line must be byte for byte the canonical line of its own
    values ([`encode_line`][comply_lab.model.entry.encode_line], without the newline) and its
    ``entry_hash`` the SHA-256 of the hashed part. Anything else is rejected: a field added,
    removed or renamed, a key given twice (JSON readers keep the last value, while the hash
    covered the first), keys out of order, other spacing or escaping, bytes after the record.

    Returns:
        None for a valid line, else why it is not.
    """
    if record.keys() != _FIELD_SET:
        return "its fields were altered: it does not hold exactly an entry's fields"
    claimed = record["entry_hash"]
    try:
        body = orjson.dumps(
            {k: v for k, v in record.items() if k not in _OUTSIDE_HASH},
            option=orjson.OPT_SORT_KEYS,
        )
        digest = hashlib.sha256(body).hexdigest()
        expected = _assemble(body, digest, record["input_content"], record["output_content"])
    except orjson.JSONEncodeError:
        return "it holds values no entry can hold"
    if claimed != digest:
        return "it does not match its entry_hash"
    if line != expected:
        return (
            "it is not stored in its canonical form (a key given twice, keys out of order, "
            "other spacing or escaping, or bytes after the record)"
        )
    return None


def tampered_ids(data: bytes) -> set[str]:
    """Return the ids of the hashed JSONL entries of ``data`` that fail `line_problem`.

    Lines that are not JSON objects, and records without ``entry_hash`` (another tool's),
    are not entries this check can vouch for either way; readers report them.
    """
    found = set()
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue  # a damaged line: reported as such, not as an entry
        if isinstance(record, dict) and "entry_hash" in record and line_problem(line, record):
            found.add(str(record.get("id")))
    return found
