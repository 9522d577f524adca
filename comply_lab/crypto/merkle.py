"""Merkle tree hashing of RFC 6962/9162 (Certificate Transparency), with proofs.

Leaves are hashed as ``SHA-256(0x00 || data)`` and interior nodes as
``SHA-256(0x01 || left || right)``; the tree over ``n`` leaves splits at the largest power
of two below ``n``. Distinct prefixes make a leaf impossible to pass off as a node. The
root of the empty tree is ``SHA-256("")``.

[`MerkleTree`][comply_lab.crypto.merkle.MerkleTree] keeps every level of a tree, so that
inclusion proofs (RFC 9162 section 2.1.3) and consistency proofs (section 2.1.4) cost a few
lookups each; [`verify_inclusion`][comply_lab.crypto.merkle.verify_inclusion] and
[`verify_consistency`][comply_lab.crypto.merkle.verify_consistency] check them with only the
roots. Both are tested against the test vectors of transparency-dev/merkle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

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


def inclusion_proof(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path proving leaf ``index`` is in the tree over ``leaves`` (data).

    Raises:
        IndexError: ``index`` is not a leaf of the tree.
    """
    return MerkleTree([leaf_hash(data) for data in leaves]).inclusion_proof(index)


class MerkleTree:
    """An RFC 6962 tree over leaf hashes, every level kept (``2n`` hashes for ``n`` leaves).

    Level 0 holds the leaf hashes; each level above pairs the one below, a lone last node
    moving up unchanged, which gives exactly RFC 6962's split. Proofs for any earlier
    size of the tree come from the same levels.

    Leaves may be unknown (``None``) where ``blocks`` gives the hashes of the complete subtrees
    covering them (``(start, size) -> hash``, see
    [`dyadic_blocks`][comply_lab.crypto.merkle.dyadic_blocks]): what is kept of entries deleted
    by retention. Roots and proofs that need only those subtrees are computed as usual; one that
    needs a hash inside them raises ``LookupError``.
    """

    def __init__(
        self,
        leaf_hashes: Sequence[bytes | None],
        blocks: Mapping[tuple[int, int], bytes] | None = None,
    ) -> None:
        known = dict(blocks or {})
        leaves = list(leaf_hashes)
        for (start, size), digest in known.items():
            if size == 1 and leaves[start] is None:
                leaves[start] = digest
        self.levels: list[list[bytes | None]] = [leaves]
        while len(self.levels[-1]) > 1:
            below, width = self.levels[-1], 1 << len(self.levels)
            above: list[bytes | None] = []
            for i in range(0, len(below) - 1, 2):
                left, right = below[i], below[i + 1]
                given = known.get((i // 2 * width, width))
                joined = node_hash(left, right) if left is not None and right is not None else None
                above.append(given if given is not None else joined)
            if len(below) % 2:
                above.append(below[-1])
            self.levels.append(above)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self.levels[0])

    def root(self, size: int | None = None) -> bytes:
        """Return the root of the first ``size`` leaves (all by default)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise IndexError(f"a tree of {self.size} leaves has no root at size {size}")
        return self._hash(0, size) if size else _sha256(b"").digest()

    def _hash(self, start: int, end: int) -> bytes:
        """Return the root of leaves ``start``..``end`` (``start`` aligned as RFC 6962's split).

        Raises:
            LookupError: it lies inside subtrees only known as a whole (see the class).
        """
        width = end - start
        if width & (width - 1) == 0:  # a complete subtree, kept in a level
            found = self.levels[width.bit_length() - 1][start >> (width.bit_length() - 1)]
            if found is None:
                raise LookupError(f"the hash of leaves {start}..{end - 1} is not kept")
            return found
        k = _split(width)
        return node_hash(self._hash(start, start + k), self._hash(start + k, end))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """Return the audit path of leaf ``index`` in the tree of the first ``size`` leaves.

        Raises:
            IndexError: ``index`` is not a leaf of that tree.
        """
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise IndexError(f"leaf {index} is not in a tree of {size}")
        proof: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            k = _split(end - start)
            if index < start + k:
                proof.append(self._hash(start + k, end))
                end = start + k
            else:
                proof.append(self._hash(start, start + k))
                start += k
        return proof[::-1]

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """Return the proof that the tree of ``old`` leaves is a prefix of that of ``new``.

        RFC 9162 section 2.1.4.1; empty when the sizes are equal.

        Raises:
            IndexError: not ``0 < old <= new <= size``.
        """
        new = self.size if new is None else new
        if not 0 < old <= new <= self.size:
            raise IndexError(f"no consistency proof from size {old} to {new}")
        proof: list[bytes] = []
        start, end, complete = 0, new, True
        while old != end:
            k = _split(end - start)
            if old - start <= k:
                proof.append(self._hash(start + k, end))
                end = start + k
            else:
                proof.append(self._hash(start, start + k))
                start, complete = start + k, False
        if not complete:
            proof.append(self._hash(start, end))
        return proof[::-1]


def dyadic_blocks(start: int, leaf_hashes: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
    """Return the largest complete subtrees covering leaves ``start`` onwards, with hashes.

    The leaves ``start .. start + len(leaf_hashes) - 1`` of a larger tree are covered by
    a unique list of complete, aligned subtrees (``(start, size, hash)``, left to right);
    with them, the larger tree's roots and proofs that do not look inside them can be
    computed without the leaves.
    """
    blocks = []
    position, end = start, start + len(leaf_hashes)
    while position < end:
        size = position & -position if position else 1 << (end - 1).bit_length()
        while position + size > end:
            size >>= 1
        level = list(leaf_hashes[position - start : position - start + size])
        while len(level) > 1:  # a complete subtree: pairs all the way up
            pairs = zip(level[0::2], level[1::2], strict=True)
            level = [_sha256(b"\x01" + left + right).digest() for left, right in pairs]
        blocks.append((position, size, level[0]))
        position += size
    return blocks


def verify_consistency(
    old: int, new: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> bool:
    """Check a consistency proof (RFC 9162, section 2.1.4.2).

    A proof from the empty tree proves nothing and is refused, as a larger old size is.
    """
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root


def verify_inclusion(
    leaf_digest: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Check an inclusion proof (RFC 9162, section 2.1.3.2).

    Args:
        leaf_digest: The leaf's hash ([`leaf_hash`][comply_lab.crypto.merkle.leaf_hash] of its
            data).
        index: The leaf's position.
        size: The number of leaves in the tree.
        proof: The audit path, bottom up.
        root: The tree's root.
    """
    if not 0 <= index < size or len(leaf_digest) != 32:
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
