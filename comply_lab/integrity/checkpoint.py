"""Checkpoints: a small signed statement of the log's size and root, kept elsewhere.

No check inside a log can reveal that its newest segments *and* their manifest records
were removed: what is left is a shorter, consistent log. A checkpoint saved somewhere else
(a ticket, an email, another bucket) records how many manifest records existed, how many
entries they covered and the RFC 6962 root over their record hashes, and the length and
head (last ``record_hash``) of every other trail — holds, retention, access, keys,
shredding, heartbeats. Verifying the log against it later proves that history and every
trail were only ever appended to: a removed hold record, a truncated access trail or a
rewritten retention record no longer matches.

A checkpoint is written in the C2SP ``tlog-checkpoint`` format: a signed note (see
[`comply_lab.crypto.note`][comply_lab.crypto.note]) whose first three lines are the origin, the
size of the log-wide tree of entry hashes
([`comply_lab.integrity.tlog`][comply_lab.integrity.tlog]) and its base64 root, and
whose extension lines carry the rest::

    comply-lab/1f2e3d4c5b6a7980
    1000000
    CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
    comply-lab time 2026-01-31T23:59:59.123456+00:00
    comply-lab manifest <records> <entries> <hex root of record hashes> <head>
    comply-lab key <fingerprint of the signing key>   (signed checkpoints)
    comply-lab trail <name> <records> <head>          (one per other trail, "-": none)

    — comply-lab/1f2e3d4c5b6a7980 <base64 key ID and Ed25519 signature>

The signature line's key name is the origin, so any signed-note reader (Go's
``golang.org/x/mod/sumdb/note``, for one) opens it with the verifier key
[`verifier_key`][comply_lab.integrity.checkpoint.verifier_key] prints. Witnesses add cosignature
lines; readers ignore lines of keys they do not know. JSON checkpoints of earlier versions are
still read and checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab._time import utc_now
from comply_lab.crypto.merkle import MerkleBuilder, MerkleTree, digest_bytes
from comply_lab.crypto.note import ED25519, Note, NoteError, Signer, Verifier, check_name
from comply_lab.crypto.signing import PublicKeyLike, key_id, load_public_key, signature_valid
from comply_lab.errors import IntegrityError, InvalidQueryError, NothingSealedError
from comply_lab.integrity.report import Problem
from comply_lab.integrity.tlog import LogTree
from comply_lab.integrity.trails import check_trail
from comply_lab.model.entry import format_timestamp
from comply_lab.storage.base import Storage, StorageBase
from comply_lab.storage.genesis import default_origin, geneses
from comply_lab.storage.manifest import MANIFEST, SIGNERS, TRAILS
from comply_lab.storage.signers import authority, check_may_sign

FORMAT = "comply-lab-checkpoint/3"
"""The format tag of a checkpoint written as a C2SP signed note."""
_FORMATS = ("comply-lab-checkpoint/1", "comply-lab-checkpoint/2", FORMAT)  # /1: no trails
_EXTENSION = "comply-lab"


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
        origin: The log's name, the note's first line.
        size: Leaves of the tree of entry hashes (sealed entries, each once).
        tree_root: Its base64 RFC 6962 root.
        note: The checkpoint as a signed note, every signature line included.
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
    origin: str | None = None
    size: int | None = None
    tree_root: str | None = None
    note: str | None = None

    def to_json(self) -> str:
        """Return the checkpoint as one line of JSON (a note checkpoint: its note in it)."""
        if self.note is not None:
            return json.dumps({"format": self.format, "note": self.note})
        return json.dumps(asdict(self), sort_keys=True)

    def to_note(self) -> str:
        """Return the checkpoint as its signed note (C2SP tlog-checkpoint).

        Raises:
            InvalidQueryError: it is a JSON checkpoint of an earlier version.
        """
        if self.note is None:
            raise InvalidQueryError("a JSON checkpoint of an earlier version has no note form")
        return self.note

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the checkpoint to a file: its note (earlier versions: JSON)."""
        Path(path).write_text(self.note if self.note is not None else self.to_json() + "\n")

    def with_note(self, note: Note) -> Checkpoint:
        """Return the checkpoint with another form of its note (cosignatures added, say).

        Raises:
            InvalidQueryError: ``note`` states another checkpoint.
        """
        if self.note is None or Note.parse(self.note).text != note.text:
            raise InvalidQueryError("the note states another checkpoint than this one")
        return replace(self, note=str(note))

    @classmethod
    def load(cls, value: Checkpoint | dict[str, Any] | str | os.PathLike[str]) -> Checkpoint:
        """Read a checkpoint from an object, a dict, a JSON string or a file.

        Raises:
            InvalidQueryError: it is not a comply_lab checkpoint.
        """
        if isinstance(value, Checkpoint):
            return value
        data: Any = value
        if isinstance(value, str | os.PathLike) and not _inline(str(value)):
            try:
                data = Path(value).read_text()
            except (OSError, ValueError) as err:
                reason = getattr(err, "strerror", None) or str(err)
                raise InvalidQueryError(f"cannot read checkpoint {value!r}: {reason}") from None
        if isinstance(data, str) and not data.lstrip().startswith("{"):
            return from_note(data)
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                data = None
        if isinstance(data, dict) and data.get("format") == FORMAT and "note" in data:
            return from_note(str(data["note"]))
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
        """Return the bytes a JSON checkpoint's signature covers (/1: without ``trails``)."""
        body = {k: v for k, v in asdict(self).items() if k not in ("signature", *_NOTE_FIELDS)}
        if self.format == _FORMATS[0]:
            body.pop("trails")
        return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


_NOTE_FIELDS = ("origin", "size", "tree_root", "note")


def _inline(value: str) -> bool:
    """Whether a string is a checkpoint itself (JSON or a note), not a file name."""
    return value.lstrip().startswith("{") or "\n" in value


def pinned_verifier(
    public_key: PublicKeyLike, origin: str | None = None
) -> tuple[Ed25519PublicKey, str]:
    """Return the root key a verifier pins, and the origin its checkpoints must name.

    Args:
        public_key: The log's key (object, PEM, raw bytes, or a file of either), or its C2SP
            verifier key (``origin+hash+base64``, or a file holding it), which carries the
            origin too.
        origin: The origin, when the key does not carry it. Default: the verifier key's,
            else [`default_origin`][comply_lab.storage.genesis.default_origin] of the
            key (what checkpoints are signed under unless another origin was chosen).

    Raises:
        InvalidKeyError: the key is none of these.
        InvalidQueryError: ``origin`` differs from the one the verifier key carries.
    """
    vkey = _verifier_text(public_key)
    if vkey is not None:
        verifier = Verifier.parse(vkey)
        if origin is not None and origin != verifier.name:
            raise InvalidQueryError(
                f"the verifier key is for origin {verifier.name!r}, not {origin!r}: give one"
            )
        return verifier.public_key, verifier.name
    key = load_public_key(public_key)
    return key, origin if origin is not None else default_origin(key)


def _verifier_text(value: object) -> str | None:
    """Return a C2SP verifier key given as text or in a (small) file, else None."""
    text: object = value
    if isinstance(value, str | os.PathLike) and not str(value).lstrip().startswith("-----"):
        try:
            path = Path(value)
            if path.is_file():
                data = path.read_bytes()
                if len(data) <= 32 or len(data) > 4096:
                    return None  # a raw 32-byte key, or no verifier key
                text = data.decode("ascii")
        except (OSError, ValueError):
            return None
    if (
        isinstance(text, str)
        and text.strip().count("+") >= 2
        and text.strip().isprintable()
        and " " not in text.strip()
    ):
        return text.strip()
    return None


def verifier_key(public_key: Ed25519PublicKey, origin: str) -> str:
    """Return the verifier key (``name+hash+base64``) that opens the log's checkpoints."""
    return Verifier(check_name(origin), ED25519, public_key).vkey()


def note_body(
    origin: str,
    size: int,
    tree_root: str,
    time: str,
    manifest: tuple[int, int, str, str | None],
    trails: Mapping[str, Sequence[Any]],
    signer: str | None = None,
) -> str:
    """Return the text of a checkpoint note (see the module's documentation)."""
    records, entries, root, head = manifest
    lines = [
        check_name(origin),
        str(size),
        tree_root,
        f"{_EXTENSION} time {time}",
        f"{_EXTENSION} manifest {records} {entries} {root} {head or '-'}",
    ]
    lines += [f"{_EXTENSION} key {signer}"] if signer is not None else []
    lines += [
        f"{_EXTENSION} trail {n} {length} {h or '-'}" for n, (length, h) in sorted(trails.items())
    ]
    return "\n".join(lines) + "\n"


def from_note(text: str) -> Checkpoint:
    """Read a checkpoint note, signed (a blank line, then signature lines) or not.

    Raises:
        InvalidQueryError: it is not a comply_lab checkpoint note.
    """
    try:
        body = Note.parse(text).text if "\n\n" in text else text
        note = text if "\n\n" in text else body
        return Checkpoint(**_fields(body), format=FORMAT, note=note)
    except (NoteError, ValueError, IndexError, KeyError, TypeError, binascii.Error):
        raise InvalidQueryError(
            "not a comply_lab checkpoint: expected the note `comply-lab checkpoint` wrote "
            "(origin, size, root hash, comply-lab lines, then signatures)"
        ) from None


def _fields(body: str) -> dict[str, Any]:
    """Return the checkpoint fields stated by a note's text."""
    lines = body.split("\n")[:-1]
    origin, size, tree_root, extensions = lines[0], lines[1], lines[2], lines[3:]
    if not size.isdigit() or (size.startswith("0") and size != "0"):
        raise ValueError("the tree size is not a decimal number")
    if len(base64.b64decode(tree_root, validate=True)) != 32:
        raise ValueError("the root hash is not 32 bytes")
    found: dict[str, Any] = {"trails": {}}
    for line in extensions:
        words = line.split(" ")
        if words[0] != _EXTENSION:
            continue  # another program's extension line: opaque
        if words[1] == "time" and len(words) == 3:
            found["time"] = words[2]
        elif words[1] == "manifest" and len(words) == 6:
            found["records"], found["entries"] = _count(words[2]), _count(words[3])
            found["root"], found["head"] = words[4], None if words[5] == "-" else words[5]
        elif words[1] == "key" and len(words) == 3:
            found["key_id"] = words[2]
        elif words[1] == "trail" and len(words) == 5:
            found["trails"][words[2]] = [_count(words[3]), None if words[4] == "-" else words[4]]
        else:
            raise ValueError(f"unknown line {line!r}")
    check_name(origin)
    return {**found, "origin": origin, "size": int(size), "tree_root": tree_root}


def _count(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a count")
    return int(text)


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
    tree: LogTree | None = None,
    origin: str | None = None,
) -> Checkpoint:
    """Return a checkpoint note over manifest records, trail heads and the tree of entries.

    Args:
        records: The manifest records, in order.
        signing_key: Signs the checkpoint (unsigned: the note has no signature lines).
        trails: Each other trail's ``(records, head)``.
        tree: The tree of entry hashes (none: an empty tree).
        origin: The log's name (default:
            [`default_origin`][comply_lab.storage.genesis.default_origin]).
    """
    root, entries = _root(records)
    origin = origin or default_origin(signing_key)
    size = tree.tree.size if tree is not None else 0
    tree_root = (
        tree.root() if tree is not None else base64.b64encode(MerkleTree([]).root()).decode()
    )
    if tree_root is None:
        raise IntegrityError("the log's sealed parts give no tree (verify the log first)")
    time = format_timestamp(utc_now())
    head = records[-1].get("record_hash") if records else None
    heads = {name: [length, last] for name, (length, last) in (trails or {}).items()}
    signer = key_id(signing_key) if signing_key is not None else None
    manifest = (len(records), entries, root, head)
    body = note_body(origin, size, tree_root, time, manifest, heads, signer)
    if signing_key is None:
        return from_note(body)
    return from_note(str(Note(body).signed_by(Signer(origin, signing_key))))


def take_checkpoint(
    storage: Storage, signing_key: Ed25519PrivateKey | None = None, origin: str | None = None
) -> Checkpoint:
    """Return a checkpoint of a store's manifest, trails and entries, once they verify.

    A checkpoint vouches for what it covers, so every trail is checked first (canonical
    form, record hashes, chain and — when the log is signed and a key is given — every
    record's signature, under the root key the store pinned, or else the signing key's).

    Raises:
        NothingSealedError: nothing is sealed yet, so it would cover no entry.
        IntegrityError: a trail does not verify, or a sealed part is gone.
        InvalidQueryError: ``origin`` is not the one the log's genesis names (by default
            the checkpoint carries that one).
        SigningKeyRequiredError: ``signing_key`` is an operator key without the ``seal``
            scope under the store's pinned root (or one given without pinning the root).
    """
    check_may_sign(storage, "checkpoint", signing_key)
    data = {name: storage.read_metadata(name) for name in TRAILS}
    trails = [check_trail(data[name], name, None) for name in TRAILS]
    pinned = storage.root_key if isinstance(storage, StorageBase) else None
    root = pinned or signing_key
    if root is not None and any(t.signed for t in trails):
        known = authority(data[SIGNERS], root)
        trails = [check_trail(data[name], name, known.keys_for(name), known) for name in TRAILS]
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
    signed_geneses = geneses(trails[TRAILS.index(SIGNERS)].records) if root is not None else []
    first = signed_geneses[0] if signed_geneses else None
    if first is not None and origin is not None and origin != first["origin"]:
        raise InvalidQueryError(
            f"the log's genesis names it {first['origin']!r}, so its checkpoints carry that "
            f"origin, not {origin!r}: leave the origin out (or give that one); nothing was "
            "signed"
        )
    if origin is None and first is not None:
        origin = str(first["origin"])
    if origin is None and pinned is not None:
        origin = default_origin(pinned)  # the log's, whoever signs (an operator)
    return make_checkpoint(records, signing_key, heads, LogTree.build(storage, records), origin)


def check_checkpoint(
    checkpoint: Checkpoint,
    records: Sequence[dict[str, Any]],
    keys: Mapping[str, Ed25519PublicKey] | None,
    trails: Mapping[str, Sequence[str | None]] | None = None,
    tree: LogTree | None = None,
    origin: str | None = None,
) -> list[Problem]:
    """Return the problems of a log against a saved checkpoint.

    Args:
        checkpoint: The checkpoint.
        records: The log's manifest records, in order.
        keys: The keys that may sign it (the writer's and its declared operators'); its
            signature is checked when given.
        trails: Each trail's ``record_hash`` values, line by line.
        tree: The log's tree of entry hashes now, checked against a note checkpoint's root.
        origin: The origin the verifier pinned: a checkpoint naming another is refused,
            however it is signed (a history started over under a new name).
    """
    problems = []
    if origin is not None and checkpoint.origin is not None and checkpoint.origin != origin:
        problems.append(
            Problem(
                "bad_signature",
                f"the checkpoint is of origin {checkpoint.origin!r}, not of the log the "
                f"verifier pinned ({origin!r}): give that log's origin (--origin, or its "
                "verifier key) if the log was renamed",
                segment="checkpoint",
            )
        )
    if keys is not None and checkpoint.note is not None:
        problems += _note_signature(checkpoint, keys)
    elif keys is not None:
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
    if tree is not None and checkpoint.size is not None:
        problems += _tree(checkpoint, tree)
    return problems


def _note_signature(checkpoint: Checkpoint, keys: Mapping[str, Ed25519PublicKey]) -> list[Problem]:
    """Return the problem of a checkpoint note no given key signed (or whose line fails)."""
    origin = str(checkpoint.origin)
    verifiers = [Verifier(origin, ED25519, key) for key in keys.values()]
    try:
        signed = "\n\n" in str(checkpoint.note) and Note.parse(str(checkpoint.note)).verified_by(
            verifiers
        )
    except NoteError as err:
        return [Problem("bad_signature", f"the checkpoint: {err}", segment="checkpoint")]
    if signed:
        return []
    return [
        Problem(
            "bad_signature",
            f"the checkpoint of {checkpoint.time} carries no signature of {origin} by the given "
            "key or an operator key the log declares",
            segment="checkpoint",
        )
    ]


def _tree(checkpoint: Checkpoint, tree: LogTree) -> list[Problem]:
    """Return the problem of sealed entries that no longer give the checkpoint's tree."""
    size = int(checkpoint.size or 0)
    if tree.tree.size < size:
        detail = (
            f"the log's sealed parts hold {tree.tree.size:,} entries but the checkpoint of "
            f"{checkpoint.time} covers {size:,}: sealed entries were removed"
        )
        return [Problem("missing", detail, segment=MANIFEST)]
    if tree.root(size) != checkpoint.tree_root:
        detail = (
            f"the first {size:,} sealed entries do not give the root of the checkpoint of "
            f"{checkpoint.time}: sealed entries were altered, removed or reordered"
        )
        return [Problem("modified", detail, segment=MANIFEST)]
    return []


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
