"""Content keys: Fernet, AES-GCM key rings, KMS envelope keys, per-subject keys, rotation.

Above storage (rotation rewrites stored parts), below integrity and the logger.
"""
