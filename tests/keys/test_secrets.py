"""No message, warning, traceback or repr ever shows a secret, whatever shape it comes in.

Every entry point that loads key material (Python and the command line) is fed each kind
of secret in each wrong shape: truncated, altered, missing its id, with an id it should
not have, with trailing garbage, given where another kind of key belongs, and given where
a *file name* belongs (a key pasted in place of its path). Whatever it answers (an error,
a warning, a log line, an exit message), and the repr of every object holding a key, must
contain neither the secret nor any 8-character slice of it.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from comply_lab import AuditLogger, EncryptionManager, KeyRing, MemoryStorage, open_log
from comply_lab.audit import FileStorage
from comply_lab.cli import main
from comply_lab.crypto.note import Verifier
from comply_lab.crypto.signing import (
    generate_signing_key,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_pem,
)
from comply_lab.integrity.witness import witness_verifiers
from comply_lab.keys.encryption import decrypt, encrypt, generate_key, keys_from_text


def _pem_body(pem: bytes) -> str:
    return "".join(line for line in pem.decode().splitlines() if not line.startswith("-----"))


class Secret:
    """One secret: its text form, and the material that must never be shown."""

    def __init__(self, name: str, text: str, material: str) -> None:
        self.name = name
        self.text = text
        self.material = material

    def slices(self) -> set[str]:
        return {self.material[i : i + 8] for i in range(len(self.material) - 7)}

    def shapes(self) -> dict[str, str]:
        """Return the secret in every wrong shape a user could hand it over in."""
        text = self.text
        return {
            "as is": text,
            "truncated": text[:-3],
            "altered": text[:10] + "!" + text[11:],
            "with an id": f"k1:{text}",
            "without its id": text.split(":", 1)[-1] if text[:3] == "k1:" else text,
            "with garbage": text + ",junk",
            "padded": f"  {text}\n\n",
            "doubled": text + text,
        }


def _secrets() -> list[Secret]:
    fernet = generate_key().decode()
    ring = KeyRing.generate("k1").to_text()
    raw = base64.b64encode(secrets.token_bytes(32)).decode()
    pem = private_key_pem(generate_signing_key())
    signer = (
        "PRIVATE+KEY+example.com/log+0a1b2c3d+" + base64.b64encode(secrets.token_bytes(33)).decode()
    )
    aws = base64.b64encode(secrets.token_bytes(30)).decode()
    return [
        Secret("Fernet key", fernet, fernet),
        Secret("key ring", ring, ring.split(":", 1)[1]),
        Secret("raw AES key", raw, raw),
        Secret("Ed25519 private key", pem.decode(), _pem_body(pem)),
        Secret("signed-note signer key", signer, signer.rsplit("+", 1)[1]),
        Secret("AWS secret key", aws, aws),
    ]


SECRETS = _secrets()


def _leaks(secret: Secret, text: str) -> list[str]:
    return sorted(piece for piece in secret.slices() if piece in text)


def _answer(call: Callable[[], object], caplog: pytest.LogCaptureFixture) -> str:
    """Run ``call``; return everything it said: error with traceback, warnings, logs, repr."""
    said: list[str] = []
    caplog.clear()
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            result = call()
        except BaseException as err:
            said.append("".join(traceback.format_exception(err)))
        else:
            said += [repr(result), str(result)]
    said += [str(w.message) for w in warned]
    said += [record.getMessage() for record in caplog.records]
    return "\n".join(said)


def _file(folder: Path, text: str) -> Path:
    path = folder / f"key-{secrets.token_hex(4)}"
    path.write_text(text)
    return path


def _python_entry_points(tmp: Path) -> Iterator[tuple[str, Callable[[str], object]]]:
    """Each Python entry point that reads key material, as a function of the material's text."""
    log = tmp / "log"
    with AuditLogger(FileStorage(log)) as logger:
        logger.log_sync(input="q", output="a")
    token = encrypt(b"content", generate_key())
    yield "KeyRing.from_text", KeyRing.from_text
    yield "KeyRing.from_file(file)", lambda t: KeyRing.from_file(_file(tmp, t))
    yield "KeyRing.from_file(name)", KeyRing.from_file
    yield "KeyRing.from_env", lambda t: _with_env("SECRET_RING", t, KeyRing.from_env)
    yield "KeyRing(keys)", lambda t: KeyRing({"k1": t.encode()})
    yield "KeyRing(id)", lambda t: KeyRing({t: secrets.token_bytes(32)})
    yield "EncryptionManager", lambda t: EncryptionManager(t.encode())
    yield "encrypt", lambda t: encrypt(b"content", t.encode())
    yield "decrypt", lambda t: decrypt(token, t.encode())
    yield "keys_from_text", keys_from_text
    yield "load_private_key(text)", load_private_key
    yield "load_private_key(bytes)", lambda t: load_private_key(t.encode())
    yield "load_private_key(file)", lambda t: load_private_key(_file(tmp, t))
    yield "load_public_key(text)", load_public_key
    yield "load_public_key(file)", lambda t: load_public_key(_file(tmp, t))
    yield "FileStorage(signing_key=)", lambda t: FileStorage(tmp / "signed", signing_key=t)
    yield "open_log(signing_key=)", lambda t: open_log(log, signing_key=t)
    yield "Log.verify(public_key=)", lambda t: open_log(log).verify(public_key=t)
    yield "AuditLogger(hash_key=)", lambda t: AuditLogger(MemoryStorage(), hash_key=t.encode())
    yield "Verifier.parse", Verifier.parse
    yield "witness_verifiers", lambda t: witness_verifiers([t])


def _with_env(name: str, value: str, call: Callable[[], object]) -> object:
    os.environ[name] = value
    try:
        return call()
    finally:
        del os.environ[name]


@pytest.mark.parametrize("secret", SECRETS, ids=lambda s: s.name)
def test_python_entry_points_never_show_a_secret(
    secret: Secret, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """Every shape of every secret, into every Python loader: nothing of it in any answer."""
    caplog.set_level(logging.DEBUG)
    leaks = []
    for entry, load in _python_entry_points(tmp_path):
        for shape, text in secret.shapes().items():
            found = _leaks(secret, _answer(lambda load=load, text=text: load(text), caplog))
            if found:
                leaks.append(f"{entry} <- {shape}: {found[:2]}")
    assert not leaks, leaks


def _cli_calls(
    tmp: Path, log: Path, checkpoint: Path
) -> Iterator[tuple[str, Callable[[str, str], list[str]]]]:
    """Each command option that reads a key, given a file holding the text, or the text itself."""
    yield "decrypt --keys-file", lambda path, _: [
        "decrypt", str(log), "0190b7a5-1f40-7000-8000-000000000000", "--reason", "r",
        "--keys-file", path,
    ]  # fmt: skip
    yield "verify --public-key", lambda path, _: ["verify", str(log), "--public-key", path]
    yield "hold --signing-key", lambda path, _: [
        "hold", str(log), "m", "--reason", "r", "--signing-key", path,
    ]  # fmt: skip
    yield "checkpoint --signing-key", lambda path, _: [
        "checkpoint", str(log), "--signing-key", path, "-o", str(tmp / "cp.txt"),
    ]  # fmt: skip
    yield "evidence --signing-key", lambda path, _: [
        "evidence", str(log), str(tmp / f"bundle-{secrets.token_hex(3)}"), "--signing-key", path,
    ]  # fmt: skip
    yield "witness --key", lambda path, _: [
        "witness", str(checkpoint), "--key", path, "--state", str(tmp / "w"),
        "--log-key", str(tmp / "writer.pub"),
    ]  # fmt: skip
    yield "witness --log-key", lambda path, _: [
        "witness", str(checkpoint), "--key", str(tmp / "witness.pem"), "--state",
        str(tmp / "w"), "--log-key", path,
    ]  # fmt: skip
    yield "verify --witness-key", lambda _, text: [
        "verify", str(log), "--checkpoint", str(checkpoint), "--witness-key", text,
    ]  # fmt: skip
    yield "verify-bundle --public-key", lambda path, _: [
        "verify-bundle", str(tmp), "--public-key", path,
    ]  # fmt: skip


@pytest.fixture
def signed_log(tmp_path: Path) -> tuple[Path, Path]:
    """Write a small signed log, its public key, a checkpoint of it and a witness key."""
    key = generate_signing_key()
    (tmp_path / "writer.pub").write_bytes(public_key_pem(key))
    (tmp_path / "witness.pem").write_bytes(private_key_pem(generate_signing_key()))
    log = tmp_path / "log"
    with AuditLogger(FileStorage(log, format="parquet", signing_key=key)) as logger:
        for i in range(5):
            logger.log_sync(input=f"q{i}", output="a")
    open_log(log).checkpoint(key).save(tmp_path / "cp.txt")
    return log, tmp_path / "cp.txt"


@pytest.mark.parametrize("secret", SECRETS, ids=lambda s: s.name)
def test_command_line_options_never_show_a_secret(
    secret: Secret, tmp_path: Path, signed_log: tuple[Path, Path]
):
    """Each key option, given a file of each shape or the secret itself: nothing shown."""
    log, checkpoint = signed_log
    leaks = []
    for option, arguments in _cli_calls(tmp_path, log, checkpoint):
        for shape, text in secret.shapes().items():
            for given in (str(_file(tmp_path, text)), text):
                result = CliRunner().invoke(main, arguments(given, text))
                said = result.output + (result.stderr if result.stderr_bytes else "")
                if result.exception is not None and not isinstance(result.exception, SystemExit):
                    said += "".join(traceback.format_exception(result.exception))
                found = _leaks(secret, said)
                if found:
                    where = "file" if given != text else "argument"
                    leaks.append(f"{option} <- {shape} as {where}: {found[:2]}")
    assert not leaks, leaks


@pytest.mark.parametrize("secret", SECRETS[:2], ids=lambda s: s.name)
def test_keys_from_the_environment_never_show(secret: Secret, tmp_path: Path):
    """Decrypt --keys-env and COMPLY_LAB_KEYS holding a wrong shape: nothing shown."""
    log = tmp_path / "log"
    with AuditLogger(FileStorage(log)) as logger:
        entry = logger.log_sync(input="q", output="a")
    for text in secret.shapes().values():
        for arguments, env in (
            (["--keys-env", "MY_KEYS"], {"MY_KEYS": text}),
            ([], {"COMPLY_LAB_KEYS": text}),
        ):
            result = CliRunner().invoke(
                main, ["decrypt", str(log), entry, "--reason", "r", *arguments], env=env
            )
            assert not _leaks(secret, result.output), (arguments, result.output)


def test_a_time_stamp_authority_password_is_never_shown(tmp_path: Path, signed_log):
    """A TSA URL with a user and password: failures name the authority without them."""
    _, checkpoint = signed_log
    password = secrets.token_urlsafe(24)
    url = f"http://alice:{password}@127.0.0.1:9/tsr?token={password}"
    result = CliRunner().invoke(main, ["timestamp", str(checkpoint), "--tsa", url])
    assert result.exit_code == 1
    assert "alice@127.0.0.1:9/tsr" in result.output
    assert not _leaks(Secret("password", password, password), result.output)


def test_objects_holding_keys_show_none_in_their_repr(tmp_path: Path):
    """KeyRing, EncryptionManager, stores and loggers with keys: reprs name ids only."""
    ring = KeyRing.generate("k1")
    fernet = EncryptionManager()
    key = generate_signing_key()
    hash_key = secrets.token_bytes(32)
    shown = " ".join(
        [
            repr(ring),
            str(ring),
            repr(fernet),
            repr(FileStorage(tmp_path / "a", signing_key=key)),
            repr(AuditLogger(MemoryStorage(), ring, store_content=True, hash_key=hash_key)),
            repr(AuditLogger(MemoryStorage(), fernet, store_content=True)),
            repr(open_log(tmp_path / "a", signing_key=key)),
        ]
    )
    for material in (
        ring.to_text().split(":", 1)[1],
        fernet.get_key().decode(),
        _pem_body(private_key_pem(key)),
        base64.b64encode(hash_key).decode(),
        hash_key.hex(),
    ):
        assert not _leaks(Secret("k", material, material), shown)


@pytest.mark.parametrize(
    "given",
    [
        "RXvGurFjRD!CZwAqYfRmKbogi/csYqdiconCORUx",  # base64 with no digit, cut by a slash
        "6hTeptN3/R!fzcsQhemCnn2T/ff+NfAam2rW5pPl",  # pieces each shorter than 16
        "MvkZZ96/Pc7VhbWMbOwBP7V/irQhBeLAJMCWTbUA,junk",
    ],
)
def test_a_key_given_for_a_file_name_is_never_repeated(given: str):
    """Random secrets (the AWS shape) given as a path: found flaky, now a fixed case."""
    from comply_lab.crypto.material import HIDDEN, shown_path

    assert shown_path(given) == HIDDEN
    assert shown_path("keys/writer.pem") == "'keys/writer.pem'"
