"""Signed notes and verifier keys as C2SP signed-note and tlog-cosignature define them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from comply_lab.crypto.note import (
    COSIGNATURE,
    ED25519,
    Note,
    NoteError,
    Signer,
    Verifier,
    cosignature_time,
    cosigned_message,
)
from comply_lab.errors import InvalidKeyError

# The example of c2sp.org/signed-note: this verifier key opens this note.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3"
    "mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_the_specification_example_opens():
    """The spec's vkey parses, re-encodes identically and verifies the spec's note."""
    verifier = Verifier.parse(SPEC_VKEY)
    assert verifier.vkey() == SPEC_VKEY and verifier.kind == ED25519
    note = Note.parse(SPEC_NOTE)
    assert note.text == "This is an example message.\n"
    assert [v for v, _ in note.verified_by([verifier])] == [verifier]
    assert str(note) == SPEC_NOTE


def test_an_altered_text_is_refused_and_unknown_keys_are_ignored():
    """A known key's line over changed text raises; a stranger's line is skipped."""
    verifier = Verifier.parse(SPEC_VKEY)
    altered = Note.parse(SPEC_NOTE.replace("example message", "example massage"))
    with pytest.raises(NoteError, match="does not verify"):
        altered.verified_by([verifier])
    stranger = Signer("example.com/other", Ed25519PrivateKey.generate())
    assert altered.verified_by([stranger.verifier]) == []


def test_sign_then_open_with_several_signers_and_a_cosignature():
    """A log signature and a witness cosignature (time included) both verify."""
    log = Signer("example.com/log", Ed25519PrivateKey.generate())
    witness = Signer("example.com/witness", Ed25519PrivateKey.generate(), COSIGNATURE)
    note = Note("example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n")
    note = note.signed_by(log).signed_by(witness, time=1_700_000_000)
    again = Note.parse(str(note))
    found = dict(again.verified_by([log.verifier, witness.verifier]))
    assert set(found) == {log.verifier, witness.verifier}
    assert cosignature_time(found[witness.verifier]) == 1_700_000_000
    message = cosigned_message(note.text, 1_700_000_000)
    assert message.startswith(b"cosignature/v1\ntime 1700000000\nexample.com/log\n")
    assert Verifier.parse(witness.verifier.vkey()) == witness.verifier


@pytest.mark.parametrize(
    "text",
    [
        "no blank line\n\u2014 a AAAAAAA=\n",
        "text\n\n",
        "text\n\nnot a signature line\n",
        "text\n\n\u2014 name with-no-base64!\n",
        "text\x07\n\n\u2014 a AAAAAAA=\n",
        "text\n\n\u2014 a AAAAAAA=",
    ],
)
def test_malformed_notes_are_refused(text: str):
    """Missing separators, bad lines, control characters, no final newline."""
    with pytest.raises(NoteError):
        Note.parse(text)


@pytest.mark.parametrize(
    "vkey",
    [
        "example.com/foo+530d903b+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4",
        "example.com/foo+530d903a",
        "bad name+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str):
    """A wrong key ID, truncated key, missing part or bad name: a typed error."""
    with pytest.raises(InvalidKeyError, match=r"verifier key|key name"):
        Verifier.parse(vkey)
