"""Integrity: Merkle trees, signatures, keyed fingerprints, checkpoints and verification."""
