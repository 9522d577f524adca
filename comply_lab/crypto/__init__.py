"""Signatures (Ed25519), Merkle trees (RFC 6962), content fingerprints and the look of ciphertext.

Below storage: manifests and trails are signed and hashed with these.
"""
