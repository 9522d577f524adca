"""AES-256-GCM key rings: binding to entry and field, key ids, sources, and no key leaks."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from comply_lab import AuditLogger, DecryptionError, EncryptionManager, KeyRing, open_log
from comply_lab.crypto.signing import generate_signing_key, private_key_pem
from comply_lab.errors import InvalidKeyError, InvalidQueryError
from comply_lab.keys.keyring import MissingKeyError
from tests.conftest import FakeClock


def _log(path: Path, ring: KeyRing, clock: FakeClock) -> tuple[AuditLogger, list[str]]:
    logger = AuditLogger(path, encryption=ring, store_content=True, clock=clock)
    ids = [logger.log_sync(input=f"patient {i}", output=f"note {i}") for i in range(3)]
    return logger, ids


class TestBinding:
    def test_round_trip_names_the_key(self, tmp_path: Path, clock: FakeClock):
        """Content is stored as cl1:<key id>:... and decrypts with its entry id."""
        ring = KeyRing.generate("2026-01")
        logger, ids = _log(tmp_path, ring, clock)
        entry = logger.get_entry_sync(ids[1])
        assert entry is not None and entry.input_content is not None
        assert entry.input_content.startswith("cl1:2026-01:")
        assert logger.decrypt_content(entry.input_content, entry_id=entry.id) == "patient 1"
        text = logger.decrypt_content(
            entry.output_content,
            entry_id=entry.id,  # type: ignore[arg-type]
            field="output_content",
        )
        assert text == "note 1"
        with pytest.raises(InvalidQueryError, match="pass entry_id"):
            logger.decrypt_content(entry.input_content)
        assert open_log(tmp_path).verify(allow_unsigned=True).ok

    def test_swapped_or_tampered_ciphertext_fails_naming_the_entry(
        self, clock: FakeClock, tmp_path: Path
    ):
        """A ciphertext moved to another entry or field, or altered, does not decrypt."""
        ring = KeyRing.generate()
        logger, ids = _log(tmp_path, ring, clock)
        first, second = (logger.get_entry_sync(i) for i in ids[:2])
        assert first is not None and second is not None
        with pytest.raises(DecryptionError, match=f"entry {second.id}"):
            ring.decrypt(first.input_content, entry_id=second.id, field="input_content")  # type: ignore[arg-type]
        with pytest.raises(DecryptionError, match="copied from another entry or field"):
            ring.decrypt(first.input_content, entry_id=first.id, field="output_content")  # type: ignore[arg-type]
        token = first.input_content or ""
        raw = bytearray(base64.urlsafe_b64decode(token.split(":", 2)[2]))
        raw[-1] ^= 1
        forged = "cl1:k1:" + base64.urlsafe_b64encode(bytes(raw)).decode()
        with pytest.raises(DecryptionError, match="was changed"):
            ring.decrypt(forged, entry_id=first.id, field="input_content")
        with pytest.raises(DecryptionError, match="not a comply_lab ciphertext"):
            ring.decrypt("cl1:k1:@@", entry_id=first.id, field="input_content")

    @pytest.mark.slow
    def test_a_million_nonces_never_repeat(self):
        """1,000,000 encryptions use 1,000,000 different 96-bit nonces."""
        ring = KeyRing.generate()
        nonces = {
            base64.urlsafe_b64decode(ring.encrypt("x", entry_id="e", field="f")[7:])[:12]
            for _ in range(1_000_000)
        }
        assert len(nonces) == 1_000_000


class TestRingsAndRotation:
    def test_new_primary_old_keys_still_read(self, tmp_path: Path, clock: FakeClock):
        """A ring with an old and a new key reads both; new entries use the new key."""
        old = KeyRing.generate("k1")
        _, old_ids = _log(tmp_path, old, clock)
        both = KeyRing.from_text(
            f"k2:{base64.urlsafe_b64encode(os.urandom(32)).decode()}," + old.to_text()
        )
        assert both.primary == "k2"
        newer = AuditLogger(tmp_path, encryption=both, store_content=True, clock=clock)
        new_id = newer.log_sync(input="fresh", output="")
        entry = newer.get_entry_sync(new_id)
        assert entry is not None and entry.input_content.startswith("cl1:k2:")  # type: ignore[union-attr]
        log = open_log(tmp_path)
        result = log.decrypt([*old_ids, new_id], both, reason="rotation check")
        assert result["decrypted"].all()
        only_new = KeyRing.from_text(both.to_text().split(",")[0])
        partial = log.decrypt([old_ids[0], new_id], only_new, reason="partial keys")
        assert partial["decrypted"].tolist() == [False, True]
        assert "key 'k1', which this ring does not hold" in partial["note"][0]

    def test_fernet_content_needs_its_manager(self, tmp_path: Path, clock: FakeClock):
        """Tutorial-format (Fernet) content stays readable with its manager, and says so."""
        manager = EncryptionManager()
        logger = AuditLogger(tmp_path, encryption=manager, store_content=True, clock=clock)
        entry_id = logger.log_sync(input="old style", output="")
        log = open_log(tmp_path)
        assert log.decrypt([entry_id], manager, reason="r")["input"][0] == "old style"
        marked = log.decrypt([entry_id], KeyRing.generate(), reason="r")
        assert "Fernet EncryptionManager" in marked["note"][0]


class TestSources:
    def test_env_file_and_text(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        """Rings load from text, an environment variable and a file, primary first."""
        ring = KeyRing.generate("a")
        monkeypatch.setenv("COMPLY_LAB_KEYS", ring.to_text())
        assert KeyRing.from_env().key_ids == ["a"]
        path = tmp_path / "keys"
        path.write_text(ring.to_text())
        loaded = KeyRing.from_file(path)
        token = ring.encrypt("x", entry_id="e", field="f")
        assert loaded.decrypt(token, entry_id="e", field="f") == "x"

    @pytest.mark.parametrize("text", ["", "k1", "k1:bm90MzJieXRlcw==", "a:b:c"])
    def test_bad_keys(self, text: str, monkeypatch: pytest.MonkeyPatch):
        """Malformed keys are refused with InvalidKeyError."""
        with pytest.raises(InvalidKeyError):
            KeyRing.from_text(text)
        monkeypatch.delenv("COMPLY_LAB_KEYS", raising=False)
        with pytest.raises(InvalidKeyError, match="holds no keys"):
            KeyRing.from_env()

    def test_errors_say_what_was_given_and_what_is_expected(self, tmp_path: Path):
        """A key without its id, or a signing key file, is named for what it is."""
        raw = KeyRing.generate("k1").to_text().split(":", 1)[1]
        with pytest.raises(InvalidKeyError, match="has no key id: got a Fernet key") as caught:
            KeyRing.from_text(raw)
        assert raw[:8] not in str(caught.value)
        pem = tmp_path / "writer.pem"
        pem.write_bytes(private_key_pem(generate_signing_key()))
        with pytest.raises(InvalidKeyError, match=r"expected a key ring .*got a PEM private key"):
            KeyRing.from_file(pem)
        with pytest.raises(InvalidKeyError, match="holds key id 'k1' twice"):
            KeyRing.from_text(f"k1:{raw},k1:{raw}")

    def test_a_wrong_key_under_the_right_id_is_named_first(self, tmp_path: Path, clock: FakeClock):
        """Same id, other key: the message says the key is probably wrong before tampering."""
        logger, ids = _log(tmp_path, KeyRing.generate("k1"), clock)
        logger.close()
        stranger = KeyRing.generate("k1")
        note = open_log(tmp_path).decrypt(ids[:1], stranger, reason="r")["note"][0]
        assert note.index("the key held under the id 'k1' is not the key") < note.index(
            "otherwise the ciphertext was changed"
        )

    def test_keys_never_leak(self, tmp_path: Path, clock: FakeClock):
        """No written byte, repr or error message contains the key material."""
        key = os.urandom(32)
        ring = KeyRing({"k": key})
        logger, _ = _log(tmp_path, ring, clock)
        logger.close()
        secrets = [key, base64.urlsafe_b64encode(key), base64.b64encode(key), key.hex().encode()]
        for path in tmp_path.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(s in data for s in secrets), path
        messages = [repr(ring)]
        for attempt in (
            lambda: ring.decrypt("cl1:zz:AAAAAAAAAAAAAAAAAAAAAAAA", entry_id="e", field="f"),
            lambda: ring.decrypt("cl1:k:AAAAAAAAAAAAAAAAAAAAAAAA", entry_id="e", field="f"),
        ):
            with pytest.raises(DecryptionError) as caught:
                attempt()
            messages.append(str(caught.value))
        assert isinstance(MissingKeyError("x"), KeyError)
        for message in messages:
            assert not any(s.decode("latin-1") in message for s in secrets)


def test_ring_from_aws_secrets_manager(s3_endpoint: str):
    """A ring stored as a Secrets Manager secret loads over HTTP from the local server."""
    import boto3

    client = boto3.client("secretsmanager", endpoint_url=s3_endpoint)
    ring = KeyRing.generate("sm")
    client.create_secret(Name="audit-keys", SecretString=ring.to_text())
    loaded = KeyRing.from_aws_secret("audit-keys", client=client)
    token = ring.encrypt("x", entry_id="e", field="f")
    assert loaded.decrypt(token, entry_id="e", field="f") == "x"
    with pytest.raises(InvalidKeyError, match=r"cannot read secret 'missing'.*ResourceNotFound"):
        KeyRing.from_aws_secret("missing", client=client)
