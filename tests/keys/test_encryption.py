"""EncryptionManager: the tutorial's key handling and compatibility with the original."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.fernet import Fernet

from comply_lab import DecryptionError, EncryptionManager
from comply_lab.errors import InvalidKeyError


class TestEncryptionManager:
    def test_key_round_trips_through_an_environment_variable(self, monkeypatch: pytest.MonkeyPatch):
        """The tutorial's get_key().decode() -> env -> .encode() key restores the manager."""
        first = EncryptionManager()
        monkeypatch.setenv("AUDIT_ENCRYPTION_KEY", first.get_key().decode())
        second = EncryptionManager(os.environ["AUDIT_ENCRYPTION_KEY"].encode())
        assert second.decrypt(first.encrypt("Tell me about patient records")) == (
            "Tell me about patient records"
        )

    def test_ciphertext_hides_the_text(self):
        """The stored form is ASCII and does not contain the plaintext."""
        token = EncryptionManager().encrypt("secret diagnosis")
        assert token.isascii()
        assert "secret" not in token

    def test_original_format_and_bare_tokens_decrypt(self):
        """Base64-wrapped Fernet tokens (the original tool) and bare tokens both decrypt."""
        key = Fernet.generate_key()
        raw = Fernet(key).encrypt("héllo 🚀".encode())
        manager = EncryptionManager(key)
        assert manager.decrypt(base64.urlsafe_b64encode(raw).decode()) == "héllo 🚀"
        assert manager.decrypt(raw.decode()) == "héllo 🚀"

    @pytest.mark.parametrize("bad", ["not encrypted", "", "gAAAAAbroken", "%%%"])
    def test_garbage_is_a_decryption_error(self, bad: str):
        """Damaged or plain text raises DecryptionError, not a library exception."""
        with pytest.raises(DecryptionError, match="could not be decrypted"):
            EncryptionManager().decrypt(bad)

    def test_wrong_key_is_a_decryption_error(self):
        """Content encrypted under another key raises DecryptionError."""
        token = EncryptionManager().encrypt("x")
        with pytest.raises(DecryptionError, match="not the one it was encrypted with"):
            EncryptionManager().decrypt(token)

    @pytest.mark.parametrize("bad", [b"short", b"x" * 44, "a str"])
    def test_malformed_key_never_echoes_the_key(self, bad: bytes):
        """A malformed key raises InvalidKeyError whose message does not contain the key."""
        with pytest.raises(InvalidKeyError) as caught:
            EncryptionManager(bad)  # type: ignore[arg-type]
        assert str(bad) not in str(caught.value)
        assert "x" * 44 not in str(caught.value)

    def test_repr_hides_the_key(self):
        """repr() never shows the key."""
        manager = EncryptionManager()
        assert manager.get_key().decode() not in repr(manager)
