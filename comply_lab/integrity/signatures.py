"""How a log's signatures were checked, and what a verifier without proof is told.

With the pinned root key every record's signature is checked against it (and the
operator keys it certified); this module says so in the report. Without a key, a signed
log is ``UNVERIFIED`` (unless the caller accepts unchecked signatures), and the keys its
records name must still be the writer's and the operators it declared. A log with no
signature at all is ``UNSIGNED``: internally consistent, which proves nothing against
whoever can write its files, unless the caller accepts that without a key; given a key,
it is never accepted (it may have replaced a signed log).
"""

from __future__ import annotations

from comply_lab.crypto.signing import key_id
from comply_lab.integrity.report import Problem
from comply_lab.integrity.trails import Trail
from comply_lab.storage.manifest import SIGNERS
from comply_lab.storage.signers import declarations


def signature_status(
    trails: dict[str, Trail],
    signers: bytes,
    *,
    public_key: object,
    require_signatures: bool,
    allow_unsigned: bool,
) -> tuple[str, list[Problem]]:
    """Return how signatures were checked (the report's ``signatures``) and the findings.

    Args:
        trails: Every trail, checked (under ``public_key`` when one is given).
        signers: The ``_signers`` trail's bytes.
        public_key: The pinned root key, or None.
        require_signatures: Without a key, a signed log is ``unverified`` (else accepted).
        allow_unsigned: Without a key, a log with no signature at all is accepted.
    """
    key_ids = set().union(*(t.key_ids for t in trails.values()))
    if not key_ids:
        return "none present", _unsigned(public_key, allow_unsigned)
    if public_key is not None:
        return "checked", []
    found = []
    writers = trails[SIGNERS].key_ids or set(list(key_ids)[:1])
    declared = {key_id(d.operator) for d in declarations(signers)}
    strangers = key_ids - writers - declared
    if len(writers) > 1 or (strangers and len(key_ids) > 1):
        found.append(
            Problem(
                "bad_signature",
                f"records are signed by {len(key_ids)} different keys "
                f"({', '.join(sorted(key_ids))}), not all the writer's or operator keys it "
                "declared: the signing key changed inside the log",
            )
        )
    if not require_signatures:
        return "not checked (accepted by the caller)", found
    found.append(
        Problem(
            "unverified",
            "the log is signed, but no public key was given, so no signature was "
            "checked: pass the writer's public key (--public-key), or accept unsigned "
            "checking explicitly (--no-signatures, require_signatures=False)",
        )
    )
    return "not checked (no public key)", found


def _unsigned(public_key: object, allow_unsigned: bool) -> list[Problem]:
    """Report a log with no signature at all (unless accepted without a key)."""
    if public_key is None and allow_unsigned:
        return []
    given = (
        "a public key was given, but nothing in the log is signed (no sealed part, "
        "heartbeat or record): it may have been replaced by an unsigned log. "
        if public_key is not None
        else ""
    )
    return [
        Problem(
            "unsigned",
            f"{given}UNSIGNED: internally consistent; not proof against anyone who can "
            "write the files. To sign it from now on, check it and adopt it with a root "
            "key (comply-lab adopt LOG --signing-key KEY), and keep its public key; a new "
            "log written with a signing key is signed from its start; to accept an "
            "unsigned log, pass allow_unsigned=True (--allow-unsigned)",
        )
    ]
