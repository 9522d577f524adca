"""Merkle tree hashing of RFC 6962 (Certificate Transparency), with inclusion proofs.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``; the tree over ``n`` leaves splits at the largest power
of two below ``n``. Distinct prefixes make a leaf impossible to pass off as a node. The
root of the empty tree is ``SHA-256("")``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

_sha256 = hashlib.sha256


def digest_bytes(text: str) -> bytes:
    """Return a hex digest as the 32 bytes a Merkle leaf holds.

    A damaged value that is not hex still gives a (different) leaf, so a tampered entry
    changes the root instead of stopping the computation.
    """
    try:
        return bytes.fromhex(text)
    except ValueError:
        return _sha256(text.encode("utf-8", "surrogatepass")).digest()


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 hash of a leaf."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 hash of an interior node."""
    return _sha256(b"\x01" + left + right).digest()


class MerkleBuilder:
    """Computes a Merkle root over leaves fed one at a time, in O(log n) memory.

    It keeps the roots of the complete subtrees seen so far (at most one per size, a
    power of two) and folds them right to left at the end, which is exactly RFC 6962's
    split.

    Example:
        >>> builder = MerkleBuilder()
        >>> builder.add(b"")
        >>> builder.root().hex()[:16]
        '6e340b9cffb37a98'
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []
        self.size = 0

    def add(self, data: bytes) -> None:
        """Append one leaf (its data, not its hash)."""
        self.add_leaf_hash(leaf_hash(data))

    def add_leaf_hash(self, digest: bytes) -> None:
        """Append one leaf given its leaf hash."""
        size, node = 1, digest
        stack = self._stack
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            node = node_hash(left, node)
            size *= 2
        stack.append((size, node))
        self.size += 1

    def root(self) -> bytes:
        """Return the root of the leaves added so far."""
        if not self._stack:
            return _sha256(b"").digest()
        node = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            node = node_hash(left, node)
        return node


def merkle_root(leaves: Iterable[bytes]) -> bytes:
    """Return the RFC 6962 root over leaf data."""
    builder = MerkleBuilder()
    for data in leaves:
        builder.add(data)
    return builder.root()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _subtree_root(hashes: Sequence[bytes]) -> bytes:
    builder = MerkleBuilder()
    for digest in hashes:
        builder.add_leaf_hash(digest)
    return builder.root()


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path proving leaf ``index`` is in the tree over ``leaves``.

    Raises:
        IndexError: ``index`` is not a leaf of the tree.
    """
    if not 0 <= index < len(leaves):
        raise IndexError(f"leaf {index} is not in a tree of {len(leaves)}")
    hashes = [leaf_hash(data) for data in leaves]
    proof: list[bytes] = []
    while len(hashes) > 1:
        k = _split(len(hashes))
        if index < k:
            proof.append(_subtree_root(hashes[k:]))
            hashes = hashes[:k]
        else:
            proof.append(_subtree_root(hashes[:k]))
            hashes, index = hashes[k:], index - k
    return proof[::-1]


def verify_inclusion(
    leaf_digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof (RFC 9162, section 2.1.3.2).

    Args:
        leaf_digest: The leaf's hash (:func:`leaf_hash` of its data).
        index: The leaf's position.
        size: The number of leaves in the tree.
        proof: The audit path, bottom up.
        root: The tree's root.
    """
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    node = leaf_digest
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and node == root
