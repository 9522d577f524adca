"""Content checks: whether the text an investigator holds matches the stored fingerprints."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from comply_lab.crypto.fingerprint import fingerprint, hash_key_id
from comply_lab.errors import DecryptionError, InvalidQueryError
from comply_lab.keys.encryption import EncryptionManager

Originals = Mapping[str, Any] | pd.DataFrame | None


def _originals(originals: Originals) -> dict[str, tuple[str | None, str | None]]:
    if originals is None:
        return {}
    if isinstance(originals, pd.DataFrame):
        missing = {"id", "input", "output"} - set(originals.columns)
        if missing:
            raise InvalidQueryError(f"originals needs columns id, input, output; lacks {missing}")
        return {
            str(i): (a, b)
            for i, a, b in zip(
                originals["id"], originals["input"], originals["output"], strict=True
            )
        }
    result = {}
    for entry_id, value in originals.items():
        if isinstance(value, Mapping):
            result[entry_id] = (value.get("input"), value.get("output"))
        elif isinstance(value, tuple | list) and len(value) == 2:
            result[entry_id] = (value[0], value[1])
        else:
            raise InvalidQueryError(
                f"originals[{entry_id!r}] must be (input, output) or {{'input':..., 'output':...}}"
            )
    return result


def verify_content(
    entries: pd.DataFrame,
    originals: Originals = None,
    *,
    hash_key: bytes | None = None,
    encryption: EncryptionManager | None = None,
) -> pd.DataFrame:
    """Tell for each entry whether the input and output text match the stored fingerprints.

    The text compared is, per entry: the original from ``originals`` if given for its id;
    else the stored content, decrypted with ``encryption`` when it is encrypted.

    Args:
        entries: Rows of ``log.entries()`` with at least ``id``, ``input_hash``,
            ``output_hash`` (and ``hash_key_id``, ``input_content``, ``output_content`` when
            present).
        originals: Text the investigator holds: a mapping id -> (input, output) or
            {"input": ..., "output": ...}, or a DataFrame with columns id, input, output.
        hash_key: The key of keyed (HMAC) fingerprints, for entries that have them.
        encryption: Decrypts stored content for entries without an original.

    Returns:
        One row per entry: ``id``, ``input_match`` and ``output_match`` (nullable booleans,
        <NA> when there is nothing to compare), ``compared`` (``original``, ``stored``,
        ``decrypted`` or ``none``) and ``note``.

    Raises:
        InvalidQueryError: ``entries`` lacks the needed columns, or ``originals`` is malformed.
    """
    needed = {"id", "input_hash", "output_hash"}
    if not needed <= set(entries.columns):
        raise InvalidQueryError(
            f"entries needs the columns {sorted(needed)}; read them with columns="
        )
    held = _originals(originals)
    key_id = None if hash_key is None else hash_key_id(hash_key)
    rows = []
    for row in entries.to_dict("records"):
        rows.append(_check({str(k): v for k, v in row.items()}, held, hash_key, key_id, encryption))
    frame = pd.DataFrame(rows, columns=["id", "input_match", "output_match", "compared", "note"])
    return frame.astype({"input_match": "boolean", "output_match": "boolean"})


def _check(
    row: dict[str, Any],
    held: dict[str, tuple[str | None, str | None]],
    hash_key: bytes | None,
    key_id: str | None,
    encryption: EncryptionManager | None,
) -> dict[str, Any]:
    entry_id = row["id"]
    result: dict[str, Any] = {
        "id": entry_id,
        "input_match": None,
        "output_match": None,
        "compared": "none",
        "note": "",
    }
    row_key = row.get("hash_key_id")
    row_key = None if pd.isna(row_key) else row_key
    if row_key is not None and row_key != key_id:
        result["note"] = f"keyed fingerprint (key {row_key}): pass hash_key= with that key"
        return result
    texts: tuple[Any, Any]
    if entry_id in held:
        texts, result["compared"] = held[entry_id], "original"
    else:
        stored = (row.get("input_content"), row.get("output_content"))
        if all(t is None or pd.isna(t) for t in stored):
            result["note"] = "no original given and no content stored"
            return result
        if encryption is None:
            texts, result["compared"] = stored, "stored"
        else:
            try:
                texts = tuple(None if pd.isna(t) else encryption.decrypt(t) for t in stored)  # type: ignore[assignment]
            except DecryptionError as err:
                result["note"] = str(err)
                return result
            result["compared"] = "decrypted"
    key = hash_key if row_key is not None else None
    for name, text in zip(("input", "output"), texts, strict=True):
        if isinstance(text, str):
            result[f"{name}_match"] = fingerprint(text, key) == row[f"{name}_hash"]
    return result
