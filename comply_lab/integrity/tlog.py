"""The log-wide Merkle tree of entry hashes, and inclusion proofs into it.

One RFC 6962 tree covers every sealed entry of a log. Its leaves, in order: the sealed
parts in the order of their first manifest record (a later record of the same part, as
key rotation appends, adds nothing), and within a part its rows in stored order; each
leaf's data is the 32 raw bytes of the entry's ``entry_hash`` (so the leaf hash is
``SHA-256(0x00 || entry_hash)``; an entry another tool wrote, which has none, gives the
hash of its canonical serialization). ``SPEC.md`` gives the recipe with test vectors.

A checkpoint ([`comply_lab.integrity.checkpoint`][comply_lab.integrity.checkpoint]) states the
tree's size and root; [`prove`][comply_lab.integrity.tlog.prove] gives, for chosen entries, what
anyone holding only that checkpoint needs to check that each entry is in the log: its hash,
position and audit path.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from comply_lab.crypto.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from comply_lab.errors import IntegrityError, InvalidQueryError
from comply_lab.storage.base import Storage
from comply_lab.storage.leaves import part_hashes, removed_rows, tree_parts
from comply_lab.storage.manifest import MANIFEST, RETENTION, parse_records


@dataclass
class LogTree:
    """The tree of a log's sealed entries, with the id and hash of each leaf."""

    ids: list[str | None]
    hashes: list[str | None]
    tree: MerkleTree

    @classmethod
    def build(cls, storage: Storage, records: Sequence[dict[str, Any]]) -> LogTree:
        """Read the entry hashes of every sealed part and build the tree.

        A part retention deleted contributes the subtrees its retention record kept.

        Raises:
            IntegrityError: a part is gone and no retention record kept its subtrees.
        """
        ids: list[str | None] = []
        hashes: list[str | None] = []
        blocks: dict[tuple[int, int], bytes] = {}
        kept = _kept(storage)
        removed = removed_rows(records)
        for part in tree_parts(records):
            try:
                part_ids, part_entry_hashes = part_hashes(storage, part, removed.get(part.name, ()))
            except FileNotFoundError:
                if part.name not in kept:
                    raise IntegrityError(
                        f"{part.name} is recorded in the manifest but gone, and no retention "
                        "record kept its entries' subtrees: the tree of entry hashes cannot be "
                        "rebuilt; verify the log"
                    ) from None
                count = int(part.entries or 0)
                ids += [None] * count
                hashes += [None] * count
                blocks.update({(s, n): bytes.fromhex(h) for s, n, h in kept[part.name]})
                continue
            ids += part_ids
            hashes += part_entry_hashes
        leaves = [None if h is None else leaf_hash(_raw(h)) for h in hashes]
        return cls(ids, hashes, MerkleTree(leaves, blocks))

    @classmethod
    def of(cls, storage: Storage) -> LogTree:
        """Build the tree of a store's sealed entries (see `build`)."""
        records = [r for _, r in parse_records(storage.read_metadata(MANIFEST)) if r is not None]
        return cls.build(storage, records)

    def root(self, size: int | None = None) -> str | None:
        """Return the base64 root of the first ``size`` leaves (all by default).

        None when it cannot be computed: the log's records leave a subtree retention
        kept where no tree of that size has one (what edited records do).
        """
        try:
            return base64.b64encode(self.tree.root(size)).decode()
        except LookupError:
            return None


@dataclass(frozen=True)
class InclusionProof:
    """What proves that one entry is leaf ``index`` of a tree of ``size`` leaves.

    Attributes:
        entry_id: The entry's id.
        entry_hash: Its ``entry_hash`` (hex), which the entry's fields recompute.
        index: Its leaf position.
        size: The tree size of the checkpoint it proves into.
        path: The audit path, base64, bottom up (RFC 9162 section 2.1.3).
    """

    entry_id: str
    entry_hash: str
    index: int
    size: int
    path: tuple[str, ...]

    def verify(self, root: str) -> bool:
        """Return whether the proof leads to ``root`` (the checkpoint's base64 root hash)."""
        path = [base64.b64decode(node) for node in self.path]
        digest = leaf_hash(_raw(self.entry_hash))
        return verify_inclusion(digest, self.index, self.size, path, base64.b64decode(root))

    def to_dict(self) -> dict[str, Any]:
        """Return the proof as a JSON-ready dict."""
        return {
            "entry_id": self.entry_id,
            "entry_hash": self.entry_hash,
            "index": self.index,
            "size": self.size,
            "path": list(self.path),
        }


class Covered(Protocol):
    """What `prove` needs of a checkpoint: its tree's size and root."""

    @property
    def size(self) -> int | None:
        """Leaves of the tree the checkpoint states."""

    @property
    def tree_root(self) -> str | None:
        """Base64 root of that tree."""


def prove(tree: LogTree, entry_ids: Iterable[str], checkpoint: Covered) -> list[InclusionProof]:
    """Return inclusion proofs of ``entry_ids`` into the tree a checkpoint states.

    Raises:
        InvalidQueryError: the checkpoint states no tree (an earlier JSON checkpoint), or
            an id is not among the entries it covers (not sealed yet, or unknown).
        IntegrityError: the log's entries no longer give the checkpoint's root.
    """
    if checkpoint.size is None or checkpoint.tree_root is None:
        raise InvalidQueryError(
            "this checkpoint (an earlier JSON one) states no tree of entries: take a new "
            "checkpoint to prove entries against"
        )
    size = checkpoint.size
    if tree.tree.size < size or tree.root(size) != checkpoint.tree_root:
        raise IntegrityError(
            "the log's sealed entries no longer give the checkpoint's root, so no proof into "
            "it can be made: verify the log against the checkpoint"
        )
    wanted = list(dict.fromkeys(entry_ids))
    position = {e: i for i, e in enumerate(tree.ids[:size]) if e is not None}
    unknown = [i for i in wanted if i not in position]
    if unknown:
        raise InvalidQueryError(
            f"{len(unknown)} id(s) are not among the {size:,} sealed entries the checkpoint "
            f"covers, e.g. {unknown[0]!r}: seal the log and take a new checkpoint, or check "
            "the id"
        )
    proofs = []
    for entry_id in wanted:
        index = position[entry_id]
        path = tree.tree.inclusion_proof(index, size)
        proofs.append(
            InclusionProof(
                entry_id,
                str(tree.hashes[index]),
                index,
                size,
                tuple(base64.b64encode(node).decode() for node in path),
            )
        )
    return proofs


CONSISTENCY_FORMAT = "comply-lab-consistency/1"


@dataclass(frozen=True)
class ConsistencyProof:
    """What proves that the tree of a newer checkpoint extends that of an older one.

    Attributes:
        old_size: The older checkpoint's tree size.
        old_root: Its base64 root.
        new_size: The newer checkpoint's tree size.
        new_root: Its base64 root.
        path: The proof's hashes, base64 (RFC 9162 section 2.1.4).
    """

    old_size: int
    old_root: str
    new_size: int
    new_root: str
    path: tuple[str, ...]

    def verify(self) -> bool:
        """Return whether the proof shows the old tree is a prefix of the new one."""
        try:
            nodes = [base64.b64decode(node, validate=True) for node in self.path]
            roots = base64.b64decode(self.old_root), base64.b64decode(self.new_root)
        except (ValueError, binascii.Error):
            return False
        return verify_consistency(self.old_size, self.new_size, nodes, *roots)

    def to_json(self) -> str:
        """Return the proof as JSON (``format``, sizes, roots and ``path``)."""
        body = {"format": CONSISTENCY_FORMAT, **asdict(self), "path": list(self.path)}
        return json.dumps(body, indent=2)

    @classmethod
    def load(cls, text: str) -> ConsistencyProof:
        """Read a proof from its JSON.

        Raises:
            InvalidQueryError: it is not a consistency proof.
        """
        try:
            data = json.loads(text)
            assert data.pop("format") == CONSISTENCY_FORMAT
            proof = cls(**{**data, "path": tuple(data["path"])})
            assert isinstance(proof.old_size, int) and isinstance(proof.new_size, int)
        except (ValueError, TypeError, KeyError, AssertionError, AttributeError):
            raise InvalidQueryError(
                "not a consistency proof: pass the file `comply-lab checkpoint --since` wrote"
            ) from None
        return proof


def consistency(tree: LogTree, old: Covered, new: Covered) -> ConsistencyProof:
    """Return the proof that checkpoint ``new``'s tree extends ``old``'s (both of ``tree``).

    Raises:
        InvalidQueryError: a checkpoint states no tree, or ``old`` is the larger.
        IntegrityError: the log does not give ``old``'s root: its history was rewritten
            since, and no proof can exist.
    """
    if None in (old.size, new.size, old.tree_root, new.tree_root):
        raise InvalidQueryError("an earlier JSON checkpoint states no tree: take a new one")
    old_size, new_size = int(old.size or 0), int(new.size or 0)
    if not 0 < old_size <= new_size:
        raise InvalidQueryError(
            f"no consistency proof from a tree of {old_size:,} entries to one of {new_size:,}: "
            "give the older checkpoint as --since"
        )
    if tree.tree.size < new_size or tree.root(old_size) != old.tree_root:
        raise IntegrityError(
            f"the log's first {old_size:,} sealed entries no longer give the old checkpoint's "
            "root: its history was rewritten since, so the log does not extend it"
        )
    path = tree.tree.consistency_proof(old_size, new_size)
    return ConsistencyProof(
        old_size,
        str(old.tree_root),
        new_size,
        str(new.tree_root),
        tuple(base64.b64encode(node).decode() for node in path),
    )


def _kept(storage: Storage) -> dict[str, list[list[Any]]]:
    """Return the subtrees retention records kept, per deleted part."""
    kept: dict[str, list[list[Any]]] = {}
    for _, record in parse_records(storage.read_metadata(RETENTION)):
        tree = record.get("tree") if record is not None else None
        if isinstance(tree, dict):
            kept.update(tree)
    return kept


def _raw(entry_hash: str) -> bytes:
    try:
        raw = bytes.fromhex(entry_hash)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != 32:
        raise IntegrityError(f"{entry_hash!r} is not an entry hash (64 hex digits)")
    return raw
