"""The original audit-logging API's ``audit.encryption`` module, by the same name.

Code written for it imports from here unchanged:
[`EncryptionManager`][comply_lab.keys.encryption.EncryptionManager] and the helpers
[`generate_key`][comply_lab.keys.encryption.generate_key],
[`encrypt`][comply_lab.keys.encryption.encrypt], [`decrypt`][comply_lab.keys.encryption.decrypt]
and [`hash_content`][comply_lab.keys.encryption.hash_content] (defined in
[`comply_lab.keys.encryption`][comply_lab.keys.encryption]).
"""

from comply_lab.keys.encryption import (
    EncryptionManager,
    decrypt,
    encrypt,
    generate_key,
    hash_content,
)

__all__ = ["EncryptionManager", "decrypt", "encrypt", "generate_key", "hash_content"]
