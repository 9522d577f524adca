"""How stored ciphertext looks, named once: key-ring ciphertexts and Fernet tokens.

A key ring's ciphertext is ``cl1:<key id>:<base64url(nonce + ciphertext + tag)>`` (see
[`comply_lab.keys.keyring`][comply_lab.keys.keyring]); a Fernet token (the original tool's
format) starts with ``gAAAAA``, and stored it is base64 once more (``Z0FBQUFB``).
"""

from __future__ import annotations

PREFIX = "cl1:"
"""What every key-ring ciphertext starts with, before its key id."""
FERNET_PREFIXES = ("Z0FBQUFB", "gAAAAA")
"""What Fernet tokens start with, stored and as Fernet gives them."""


def looks_encrypted(text: str) -> bool:
    """Return True for content stored encrypted: a key-ring ciphertext or a Fernet token."""
    return text.startswith((PREFIX, *FERNET_PREFIXES))
