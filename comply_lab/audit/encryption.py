"""The original audit-logging API's ``audit.encryption`` module, by the same name.

Code written for it imports from here unchanged: :class:`EncryptionManager` and the
helpers :func:`generate_key`, :func:`encrypt`, :func:`decrypt` and :func:`hash_content`
(defined in :mod:`comply_lab.keys.encryption`).
"""

from comply_lab.keys.encryption import (
    EncryptionManager,
    decrypt,
    encrypt,
    generate_key,
    hash_content,
)

__all__ = ["EncryptionManager", "decrypt", "encrypt", "generate_key", "hash_content"]
