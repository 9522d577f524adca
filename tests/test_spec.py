"""SPEC.md's test vectors, checked against the code and the standalone bundle checker."""

from __future__ import annotations

import base64
import hashlib
import json
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab.crypto.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from comply_lab.crypto.note import COSIGNATURE, Note, Signer
from comply_lab.integrity import verify_bundle
from comply_lab.integrity.checkpoint import note_body, verifier_key
from comply_lab.model.entry import canonical_bytes, entry_hash
from tests.conftest import ROOT

BLOCK = re.search(r"```json spec-vectors\n(.*?)```", (ROOT / "SPEC.md").read_text(), re.S)
V = json.loads(BLOCK.group(1)) if BLOCK else {}


def _key(seed: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(seed))


def _b64(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_the_entry_hash_recipe():
    """Canonical JSON and entry_hash: the code's and the standalone checker's agree."""
    assert canonical_bytes(V["record"]).decode() == V["canonical"]
    assert (
        verify_bundle.canonical(
            {k: v for k, v in V["record"].items() if k not in verify_bundle.NOT_HASHED}
        )
        == V["canonical"]
    )
    assert entry_hash(V["record"]) == verify_bundle.entry_hash(V["record"]) == V["entry_hash"]


def test_the_tree_and_its_proofs():
    """Leaf hash, roots at sizes 2 and 3, an inclusion and a consistency proof."""
    hashes = [V["entry_hash"], hashlib.sha256(b"second").hexdigest(),
              hashlib.sha256(b"third").hexdigest()]  # fmt: skip
    tree = MerkleTree([leaf_hash(bytes.fromhex(h)) for h in hashes])
    assert tree.levels[0][0].hex() == V["leaf_hash_0"]
    root2, root3 = _b64([V["root_size_2"], V["root_size_3"]])
    assert (tree.root(2), tree.root(3)) == (root2, root3)
    path = _b64(V["inclusion_proof_leaf_1_size_3"])
    assert tree.inclusion_proof(1) == path
    assert verify_inclusion(tree.levels[0][1], 1, 3, path, root3)
    assert verify_bundle.root_from_proof(tree.levels[0][1], 1, 3, path) == root3
    proof = _b64(V["consistency_proof_2_to_3"])
    assert tree.consistency_proof(2, 3) == proof
    assert verify_consistency(2, 3, proof, root2, root3)


def test_the_checkpoint_note_and_cosignature():
    """The note text, its signature line, both verifier keys, the cosignature line."""
    given = V["checkpoint_inputs"]
    body = note_body(given["origin"], 3, V["root_size_3"], given["time"],
                     tuple(given["manifest"]), given["trails"], given["key"])  # fmt: skip
    log_key = _key(V["log_key_seed"])
    note = Note(body).signed_by(Signer(given["origin"], log_key))
    assert str(note) == V["checkpoint"]
    assert verifier_key(log_key.public_key(), given["origin"]) == V["log_verifier_key"]
    assert verify_bundle.open_note(V["checkpoint"], log_key.public_key())[1] == "3"
    witness = Signer(V["witness_name"], _key(V["witness_key_seed"]), COSIGNATURE)
    cosigned = note.signed_by(witness, V["cosignature_time"])
    assert str(cosigned).splitlines()[-1] == V["cosignature_line"]
    assert witness.verifier.vkey() == V["witness_verifier_key"]
