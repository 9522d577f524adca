"""RFC 6962 Merkle trees: the reference roots, streaming, and inclusion proofs."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from comply_lab.crypto.merkle import (
    MerkleBuilder,
    MerkleTree,
    inclusion_proof,
    leaf_hash,
    merkle_root,
    verify_consistency,
    verify_inclusion,
)

# The Certificate Transparency reference leaves and roots for trees of 0..8 leaves.
LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# Reference inclusion proofs in the tree of all 8 leaves.
PROOFS = {
    0: [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    5: [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}


class TestRoots:
    @pytest.mark.parametrize("size", range(9))
    def test_reference_roots(self, size: int):
        """Roots of the first 0..8 reference leaves are RFC 6962's."""
        assert merkle_root(LEAVES[:size]).hex() == ROOTS[size]

    def test_streaming_builder_matches_at_every_size(self):
        """The O(log n) builder gives the reference root after each leaf."""
        builder = MerkleBuilder()
        assert builder.root().hex() == ROOTS[0]
        for size, data in enumerate(LEAVES, 1):
            builder.add(data)
            assert builder.root().hex() == ROOTS[size]
            assert builder.size == size


class TestInclusion:
    @pytest.mark.parametrize("index", sorted(PROOFS))
    def test_reference_proofs(self, index: int):
        """Audit paths match the reference and verify."""
        proof = inclusion_proof(LEAVES, index)
        assert [p.hex() for p in proof] == PROOFS[index]
        root = bytes.fromhex(ROOTS[8])
        assert verify_inclusion(leaf_hash(LEAVES[index]), index, 8, proof, root)

    def test_every_leaf_of_every_tree_up_to_40(self):
        """For trees of 1..40 leaves, each leaf's proof verifies and only at its place."""
        rng = random.Random(3)
        data = [rng.randbytes(rng.randrange(0, 40)) for _ in range(40)]
        for size in range(1, 41):
            root = merkle_root(data[:size])
            for index in range(size):
                proof = inclusion_proof(data[:size], index)
                digest = leaf_hash(data[index])
                assert verify_inclusion(digest, index, size, proof, root)
                if size > 1:
                    assert not verify_inclusion(digest, (index + 1) % size, size, proof, root)

    def test_mutated_proofs_are_rejected(self):
        """Flipping a bit, dropping, adding or reordering proof nodes fails verification."""
        root = bytes.fromhex(ROOTS[8])
        digest = leaf_hash(LEAVES[5])
        proof = inclusion_proof(LEAVES, 5)
        for i in range(len(proof)):
            for bit in (0, 7, 255):
                mutated = list(proof)
                node = bytearray(mutated[i])
                node[bit // 8] ^= 1 << (bit % 8)
                mutated[i] = bytes(node)
                assert not verify_inclusion(digest, 5, 8, mutated, root)
        assert not verify_inclusion(digest, 5, 8, proof[:-1], root)
        assert not verify_inclusion(digest, 5, 8, [*proof, proof[0]], root)
        assert not verify_inclusion(digest, 5, 8, proof[::-1], root)
        assert not verify_inclusion(digest, 5, 6, proof, root)
        assert not verify_inclusion(digest, 8, 8, proof, root)
        assert not verify_inclusion(leaf_hash(LEAVES[4]), 5, 8, proof, root)

    def test_bad_index(self):
        """Asking for a leaf outside the tree is an error."""
        with pytest.raises(IndexError):
            inclusion_proof(LEAVES, 8)


VECTORS = Path(__file__).parent / "vectors" / "rfc9162"


def _b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


@pytest.mark.parametrize(
    "case", sorted(VECTORS.glob("consistency/*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_consistency_vectors(case: Path):
    """Every consistency case of transparency-dev/merkle: accepted or refused as it says."""
    v = json.loads(case.read_text())
    ok = verify_consistency(
        v["size1"], v["size2"], _b64(v["proof"] or []), *_b64([v["root1"], v["root2"]])
    )
    assert ok is not v["wantErr"], v["desc"]


@pytest.mark.parametrize(
    "case", sorted(VECTORS.glob("inclusion/*/*.json")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_inclusion_vectors(case: Path):
    """Every inclusion case of transparency-dev/merkle: accepted or refused as it says."""
    v = json.loads(case.read_text())
    leaf, root = _b64([v["leafHash"], v["root"]])
    ok = verify_inclusion(leaf, v["leafIdx"], v["treeSize"], _b64(v["proof"] or []), root)
    assert ok is not v["wantErr"], v["desc"]


def test_tree_proofs_match_the_reference_vectors():
    """The tree gives the proofs of the vectors' happy paths (8 reference leaves)."""
    tree = MerkleTree([leaf_hash(d) for d in LEAVES])
    for case in VECTORS.glob("consistency/*/happy-path.json"):
        v = json.loads(case.read_text())
        assert tree.consistency_proof(v["size1"], v["size2"]) == _b64(v["proof"] or [])
    for case in VECTORS.glob("inclusion/*/happy-path.json"):
        v = json.loads(case.read_text())
        assert tree.inclusion_proof(v["leafIdx"], v["treeSize"]) == _b64(v["proof"] or [])


def test_every_size_pair_proves_and_roots_agree():
    """For trees up to 70 leaves: roots as streamed, every proof verifies, none across roots."""
    rng = random.Random(7)
    leaves = [rng.randbytes(8) for _ in range(70)]
    tree = MerkleTree([leaf_hash(d) for d in leaves])
    for new in range(1, 71):
        assert tree.root(new) == merkle_root(leaves[:new])
        for old in range(1, new + 1):
            proof = tree.consistency_proof(old, new)
            assert verify_consistency(old, new, proof, tree.root(old), tree.root(new))
            if old < new:
                assert not verify_consistency(old, new, proof, tree.root(old - 1 or 1) if
                                              old > 1 else b"x" * 32, tree.root(new))  # fmt: skip
        index = rng.randrange(new)
        path = tree.inclusion_proof(index, new)
        assert verify_inclusion(tree.levels[0][index], index, new, path, tree.root(new))
