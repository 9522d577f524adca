"""Ed25519 signing helpers, kept importable here; they live in `comply_lab.crypto.signing`.

Signing sits below storage (manifests and trails are signed), so it moved to the
``crypto`` layer; this name stays for code written against earlier releases.
"""

from comply_lab.crypto.signing import (
    PrivateKeyLike,
    PublicKeyLike,
    generate_signing_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
    sign,
    signature_valid,
)

__all__ = [
    "PrivateKeyLike",
    "PublicKeyLike",
    "generate_signing_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_pem",
    "public_key_pem",
    "sign",
    "signature_valid",
]
