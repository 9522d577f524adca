"""Saying what kind of key material was given, without ever showing any of it.

Every error about a key that does not fit says what it got and what it expected ("got an
Ed25519 private key (PEM), expected a key ring"), so a user who handed a signing key to
a decryption command, or a key ring to a signature check, knows what to change. The
description names a kind and a length only: never a character of the material.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from urllib.parse import urlsplit, urlunsplit

_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_URLSAFE = re.compile(r"[A-Za-z0-9_-]+={0,2}")
_RING_PART = re.compile(r"[^:,\s]+:[A-Za-z0-9_=+/-]+")
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----")

HIDDEN = "(not repeated here, in case it is a key)"
"""What messages say in place of a value that was meant to name a key file."""


def describe(data: bytes | str) -> str:
    """Return what kind of key material (or other data) ``data`` looks like, in words.

    Example:
        >>> describe("-----BEGIN PRIVATE KEY-----")
        'a PEM private key'
        >>> describe(bytes(range(32)))
        '32 bytes of binary data'
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError:
            return f"{len(data)} bytes of binary data"
        if not all(c.isprintable() or c in "\r\n\t" for c in text):
            return f"{len(data)} bytes of binary data"
    else:
        text = data
    text = text.strip()
    if not text:
        return "nothing (empty)"
    pem = _PEM.search(text)
    if pem is not None:
        label = pem.group(1).lower()
        kinds = {
            "private key": "a PEM private key",
            "encrypted private key": "a password-protected PEM private key",
            "public key": "a PEM public key",
            "certificate": "a PEM certificate",
        }
        return kinds.get(label, f"a PEM block ({label})")
    if text.startswith("PRIVATE+KEY+"):
        return "a signed-note signer key (private)"
    if text.count("+") >= 2 and " " not in text and "\n" not in text:
        return "a signed-note verifier key"
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts and all(_RING_PART.fullmatch(p) for p in parts):
        return f"a key ring text of {len(parts)} key(s)"
    if _URLSAFE.fullmatch(text) or _BASE64.fullmatch(text):
        size = _decoded_size(text)
        if size == 32 and len(text) == 44 and _URLSAFE.fullmatch(text):
            return "a Fernet key (or another 32-byte key in URL-safe base64)"
        return f"base64 text of {size} bytes" if size else f"text of {len(text)} letters and digits"
    return f"text of {len(text)} characters"


def key_kind(key: object) -> str:
    """Name the type of a key object that is not the one expected ("an RSA private key")."""
    name = type(key).__name__.lstrip("_")
    words = name.replace("PrivateKey", " private key").replace("PublicKey", " public key")
    if words == name:
        return f"a {name} object"
    article = "an" if words[0] in "AEIORX" else "a"
    return f"{article} {words}"


def shown_path(value: object) -> str:
    """Return a file name given for a key, quoted for a message, or `HIDDEN`.

    A value that looks like key material itself (base64, a key ring, PEM, a note key:
    anything but plain text such as ``keys/writer.pem``) is never repeated, nor a name
    that mixes upper and lower case and digits over 16 characters or more (base64 split
    by ``/`` into short pieces looks like a path).
    """
    text = str(value)
    plain = (
        len(text) < 300
        and text.isprintable()
        and describe(text).startswith("text of ")
        and not _random_looking(text)
    )
    return repr(text) if plain else HIDDEN


def _random_looking(part: str) -> bool:
    """Whether text looks random: long, and mixing cases and digits, or switching case.

    Base64 switches between upper and lower case all along (``RXvGurFjRD``); words and
    file names do not.
    """
    letters = [c.isupper() for c in part if c.isalpha()]
    switches = sum(a != b for a, b in itertools.pairwise(letters))
    return len(part) >= 16 and (
        switches >= 8
        or (
            any(c.isupper() for c in part)
            and any(c.islower() for c in part)
            and any(c.isdigit() for c in part)
        )
    )


def public_url(url: str) -> str:
    """Return ``url`` as messages may show it: no password, token or query string.

    Example:
        >>> public_url("https://alice:s3cret@tsa.example.com/tsr?apikey=abc")
        'https://alice@tsa.example.com/tsr?…'
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    if parts.username:
        host = f"{parts.username}@{host}"
    query = "?…" if parts.query else ""
    return urlunsplit((parts.scheme, host, parts.path, "", "")) + query


def _decoded_size(text: str) -> int | None:
    body = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return len(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None
