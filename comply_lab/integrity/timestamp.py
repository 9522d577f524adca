"""Trusted timestamps (RFC 3161) on checkpoints: proof that a checkpoint existed by a time.

A time-stamp authority (TSA) signs the SHA-256 of the checkpoint's note text (the lines
above its signatures, so cosignatures added later do not change what was stamped) with
the time it saw it. The token is stored beside the checkpoint (``CHECKPOINT.tsr``, the
DER ``TimeStampResp``) and checked later against the authority's certificate: nobody,
the writer included, can then claim the checkpoint was made later or earlier than that.

Requests and verification use the ``rfc3161-client`` package; the request asks for the
authority's certificate and carries a nonce, which the answer must repeat.
"""

from __future__ import annotations

import base64
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from rfc3161_client import (
    TimestampRequestBuilder,
    TimeStampResponse,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from comply_lab.crypto.material import public_url
from comply_lab.crypto.note import Note
from comply_lab.errors import ComplyLabError, IntegrityError, InvalidKeyError, InvalidQueryError
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.integrity.report import Problem

TIMEOUT_S = 30.0
"""How long a request to a time-stamp authority may take."""


class TimestampError(ComplyLabError):
    """A time-stamp authority could not be reached, or refused or botched the request."""


def stamped_text(checkpoint: Checkpoint) -> bytes:
    """Return the bytes a timestamp covers: the checkpoint's note text, signatures excluded."""
    note = checkpoint.to_note()
    return (Note.parse(note).text if "\n\n" in note else note).encode()


def request_timestamp(checkpoint: Checkpoint, url: str, timeout: float = TIMEOUT_S) -> bytes:
    """Ask the authority at ``url`` to timestamp a checkpoint; return its DER answer.

    Raises:
        TimestampError: the authority is unreachable, answers with an HTTP error, refuses,
            or answers another request (a different nonce or digest).
    """
    request = (
        TimestampRequestBuilder().data(stamped_text(checkpoint)).nonce(nonce=True)
        .cert_request(cert_request=True).build()
    )  # fmt: skip
    shown = public_url(url)
    address, headers = _credentials(url)
    headers["Content-Type"] = "application/timestamp-query"
    try:
        http = urllib.request.Request(
            address, data=request.as_bytes(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(http, timeout=timeout) as answer:
            data: bytes = answer.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        why = getattr(err, "reason", None) or getattr(err, "strerror", None) or type(err).__name__
        raise TimestampError(f"the time-stamp authority at {shown} did not answer: {why}") from None
    try:
        response = decode_timestamp_response(data)
    except ValueError as err:
        raise TimestampError(f"{shown} did not answer with a timestamp ({err})") from None
    if response.status not in (0, 1) or response.tst_info.nonce != request.nonce:
        raise TimestampError(
            f"{shown} refused the request (status {response.status}) or answered another one"
        )
    return data


def _credentials(url: str) -> tuple[str, dict[str, str]]:
    """Move a user and password given in the URL into a Basic authorization header."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url, {}
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    secret = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
    address = urllib.parse.urlunsplit(parts._replace(netloc=host))
    return address, {"Authorization": "Basic " + base64.b64encode(secret.encode()).decode()}


def save_timestamp(data: bytes, checkpoint_file: str | os.PathLike[str]) -> Path:
    """Store a timestamp beside its checkpoint file (``CHECKPOINT.tsr``); return its path."""
    path = Path(checkpoint_file)
    token = path.with_name(path.name + ".tsr")
    token.write_bytes(data)
    return token


def load_certificates(value: str | os.PathLike[str]) -> list[x509.Certificate]:
    """Read the authority's trusted root certificate(s) from a PEM file.

    Raises:
        InvalidKeyError: the file is unreadable or holds no PEM certificate.
    """
    try:
        return x509.load_pem_x509_certificates(Path(value).read_bytes())
    except (OSError, ValueError) as err:
        raise InvalidKeyError(
            f"cannot read the time-stamp authority's certificates from {value}: {err}"
        ) from None


def verify_timestamp(
    data: bytes, checkpoint: Checkpoint, roots: list[x509.Certificate]
) -> datetime:
    """Return the time a timestamp proves the checkpoint existed at.

    Raises:
        IntegrityError: the token is not a timestamp, is not signed by a certificate
            chaining to ``roots``, or covers other bytes than this checkpoint's.
    """
    try:
        response: TimeStampResponse = decode_timestamp_response(data)
        verifier = VerifierBuilder()
        for root in roots:
            verifier = verifier.add_root_certificate(root)
        verifier.build().verify_message(response, stamped_text(checkpoint))
    except (ValueError, VerificationError) as err:
        raise IntegrityError(
            f"the checkpoint's timestamp does not verify ({err}): it was not issued for this "
            "checkpoint by the given authority"
        ) from None
    stamped = response.tst_info.gen_time
    return stamped if stamped.tzinfo else stamped.replace(tzinfo=UTC)


def check_timestamp(
    checkpoint: Checkpoint,
    timestamp: bytes | str | os.PathLike[str],
    tsa_certs: str | os.PathLike[str],
) -> tuple[list[Problem], str | None]:
    """Check a checkpoint's timestamp (its bytes, or its file) against the authority's roots.

    Returns:
        The problem found (``bad_timestamp``), if any, and the proven time (ISO 8601).

    Raises:
        InvalidQueryError: the timestamp file cannot be read.
        InvalidKeyError: the certificates cannot be read.
    """
    try:
        data = timestamp if isinstance(timestamp, bytes) else Path(timestamp).read_bytes()
    except OSError as err:
        raise InvalidQueryError(
            f"cannot read the timestamp {timestamp!s}: {err.strerror}"
        ) from None
    try:
        proven = verify_timestamp(data, checkpoint, load_certificates(tsa_certs))
    except IntegrityError as err:
        return [Problem("bad_timestamp", str(err), segment="checkpoint")], None
    return [], proven.isoformat()
