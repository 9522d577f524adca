"""Signed notes (C2SP ``signed-note``), verifier keys, and witness cosignatures.

A signed note is UTF-8 text ending in a newline, a blank line, then one signature line
per signer: ``— <key name> base64(4-byte key ID || signature)``. A verifier key ("vkey")
``<name>+<hex key ID>+base64(type || public key)`` tells a verifier which lines are whose.
Two Ed25519 signature types are used here, both as the C2SP specifications define them:

- ``0x01``, a plain Ed25519 signature over the note text (the log's own signature on a
  checkpoint, [`ED25519`][comply_lab.crypto.note.ED25519]);
- ``0x04``, a witness cosignature (C2SP ``tlog-cosignature`` v1,
  [`COSIGNATURE`][comply_lab.crypto.note.COSIGNATURE]): 8 bytes of POSIX time, big-endian, then
  an Ed25519 signature over ``"cosignature/v1" LF "time <t>" LF || note text``.

A key ID is ``SHA-256(name || 0x0A || type || public key)[:4]``. A verifier ignores lines
whose name and key ID match no key it knows, and rejects a note whose known-key line does
not verify; a note that no known key signed is not opened. These are the rules of
``golang.org/x/mod/sumdb/note``, which opens the notes this module writes (see
``tests/interop/``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from comply_lab.crypto.material import describe
from comply_lab.errors import IntegrityError, InvalidKeyError

ED25519 = 0x01
"""Signature type of a signer's Ed25519 note signature."""
COSIGNATURE = 0x04
"""Signature type of an Ed25519 witness cosignature (tlog-cosignature v1)."""
MAX_SIGNATURES = 100
"""Signature lines read at most (the specification requires accepting at least 16)."""
_DASH = "\u2014 "
_TYPES = {ED25519: "Ed25519", COSIGNATURE: "cosignature/v1"}


class NoteError(IntegrityError):
    """A note is malformed, or no key the verifier trusts signed it."""


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def check_name(name: str) -> str:
    """Return ``name`` if it is a valid key name (or origin): non-empty, no spaces or ``+``.

    Raises:
        InvalidKeyError: it is not.
    """
    if not name or any(c.isspace() or c == "+" for c in name) or not name.isprintable():
        raise InvalidKeyError(
            f"{name!r} is not a valid note key name: use a non-empty name without spaces or "
            "'+', such as example.com/audit-log"
        )
    return name


def key_hash(name: str, kind: int, public: Ed25519PublicKey) -> int:
    """Return the 32-bit key ID of a key: ``SHA-256(name || 0x0A || kind || key)[:4]``."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + _raw(public)).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Signature:
    """One signature line of a note: who (name and key ID) and the signature bytes."""

    name: str
    key_hash: int
    data: bytes

    def line(self) -> str:
        """Return the signature line, without its newline."""
        blob = struct.pack(">I", self.key_hash) + self.data
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}"


@dataclass(frozen=True, eq=False)
class Verifier:
    """A public key that checks note signatures of one type under one name.

    Attributes:
        name: The key name in signature lines.
        kind: [`ED25519`][comply_lab.crypto.note.ED25519] or
            [`COSIGNATURE`][comply_lab.crypto.note.COSIGNATURE].
        public_key: The Ed25519 public key.
    """

    name: str
    kind: int
    public_key: Ed25519PublicKey

    @property
    def key_hash(self) -> int:
        """The key's 32-bit key ID."""
        return key_hash(self.name, self.kind, self.public_key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and self.vkey() == other.vkey()

    def __hash__(self) -> int:
        return hash(self.vkey())

    def vkey(self) -> str:
        """Return the key in the verifier-key format, ``name+hash+base64``."""
        material = base64.b64encode(bytes([self.kind]) + _raw(self.public_key)).decode()
        return f"{self.name}+{self.key_hash:08x}+{material}"

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Read a verifier key (``name+hash+base64(type || key)``).

        Raises:
            InvalidKeyError: it is not an Ed25519 or cosignature verifier key, or its key
                ID does not match its name and key.
        """
        parts = vkey.strip().split("+", 2)
        try:
            name, hash_hex, material = parts
            blob = base64.b64decode(material, validate=True)
            kind, public = blob[0], Ed25519PublicKey.from_public_bytes(blob[1:])
            verifier = cls(check_name(name), kind, public)
            ok = kind in _TYPES and len(hash_hex) == 8 and int(hash_hex, 16) == verifier.key_hash
        except (ValueError, IndexError, binascii.Error):
            ok = False
        if not ok:
            raise InvalidKeyError(
                f"expected a verifier key (name+hash+base64 of an Ed25519 or cosignature key "
                f"whose hash matches); got {describe(vkey)}: ask the key's owner for it"
            )
        return verifier

    def verify(self, text: str, signature: Signature) -> bool:
        """Return whether ``signature`` is this key's valid signature of the note ``text``."""
        if (signature.name, signature.key_hash) != (self.name, self.key_hash):
            return False
        message, data = text.encode(), signature.data
        if self.kind == COSIGNATURE:
            if len(data) != 72:
                return False
            message = cosigned_message(text, struct.unpack(">Q", data[:8])[0])
            data = data[8:]
        try:
            self.public_key.verify(data, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Signer:
    """A private key that signs notes under a name, with signatures of one type."""

    name: str
    private_key: Ed25519PrivateKey
    kind: int = ED25519

    def __post_init__(self) -> None:
        check_name(self.name)

    @property
    def verifier(self) -> Verifier:
        """The matching [`Verifier`][comply_lab.crypto.note.Verifier]."""
        return Verifier(self.name, self.kind, self.private_key.public_key())

    def sign(self, text: str, time: int | None = None) -> Signature:
        """Return this key's signature of the note ``text`` (a cosignature at ``time``)."""
        if self.kind == COSIGNATURE:
            if time is None or not 0 <= time < 2**63:
                raise ValueError("a cosignature needs a POSIX time in [0, 2**63)")
            data = struct.pack(">Q", time) + self.private_key.sign(cosigned_message(text, time))
        else:
            data = self.private_key.sign(text.encode())
        return Signature(self.name, self.verifier.key_hash, data)


def cosigned_message(text: str, time: int) -> bytes:
    """Return what a tlog-cosignature/v1 signs: header, time line, then the note text."""
    return f"cosignature/v1\ntime {time}\n{text}".encode()


def cosignature_time(signature: Signature) -> int:
    """Return the POSIX time a cosignature states."""
    return int(struct.unpack(">Q", signature.data[:8])[0])


@dataclass(frozen=True)
class Note:
    """A signed note: its text (ending in a newline) and its signature lines, in order."""

    text: str
    signatures: tuple[Signature, ...] = ()

    def __str__(self) -> str:
        lines = "".join(s.line() + "\n" for s in self.signatures)
        return f"{self.text}\n{lines}"

    def signed_by(self, signer: Signer, time: int | None = None) -> Note:
        """Return the note with ``signer``'s signature line added (or replaced)."""
        mine = (signer.name, signer.verifier.key_hash)
        kept = tuple(s for s in self.signatures if (s.name, s.key_hash) != mine)
        return Note(self.text, (*kept, signer.sign(self.text, time)))

    def verified_by(self, verifiers: list[Verifier]) -> list[tuple[Verifier, Signature]]:
        """Return the known keys that signed the note, with their signature lines.

        Lines of unknown keys are ignored, as the specification requires.

        Raises:
            NoteError: a known key's line does not verify (the note was altered).
        """
        known = {(v.name, v.key_hash): v for v in verifiers}
        found = []
        for signature in self.signatures:
            verifier = known.get((signature.name, signature.key_hash))
            if verifier is None:
                continue
            if not verifier.verify(self.text, signature):
                raise NoteError(
                    f"the signature of {signature.name} ({_TYPES[verifier.kind]}, key ID "
                    f"{signature.key_hash:08x}) does not verify: the note was altered after it "
                    "was signed"
                )
            found.append((verifier, signature))
        return found

    @classmethod
    def parse(cls, data: str | bytes) -> Note:
        """Read a signed note.

        Raises:
            NoteError: it is not valid UTF-8, holds control characters, has no blank line
                before its signatures, or a signature line is malformed.
        """
        try:
            text = data.decode("utf-8") if isinstance(data, bytes) else data
        except UnicodeDecodeError:
            raise NoteError("a signed note must be UTF-8 text") from None
        if any(ord(c) < 0x20 and c != "\n" for c in text) or not text.endswith("\n"):
            raise NoteError("not a signed note: control characters, or no final newline")
        split = text.rfind("\n\n")
        if split < 0:
            raise NoteError("not a signed note: no blank line before the signature lines")
        body, lines = text[: split + 1], text[split + 2 :].splitlines()
        if not lines or len(lines) > MAX_SIGNATURES:
            raise NoteError(f"a signed note needs 1 to {MAX_SIGNATURES} signature lines")
        return cls(body, tuple(_signature(line) for line in lines))


def _signature(line: str) -> Signature:
    name, _, blob = line.removeprefix(_DASH).partition(" ")
    try:
        raw = base64.b64decode(blob, validate=True)
        ok = line.startswith(_DASH) and len(raw) > 4 and " " not in blob and check_name(name)
    except (ValueError, binascii.Error, InvalidKeyError):
        ok = False
    if not ok:
        raise NoteError(f"malformed signature line {line[:80]!r}: expected '— name base64'")
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])
