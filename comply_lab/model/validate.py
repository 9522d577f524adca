"""Checks on the values passed to ``log()``.

Each bad value raises a typed error naming its field, before anything is hashed,
encrypted or written.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from comply_lab.errors import InvalidEntryError, UnknownFieldError

_INT64 = 1 << 63
_FLAT = frozenset({str, bool, type(None)})


def text(name: str, value: object) -> str:
    """Return ``value`` if it is a str that encodes as UTF-8 (no lone surrogates)."""
    if not isinstance(value, str):
        raise InvalidEntryError(name, f"expected str, got {type(value).__name__}; pass the text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise InvalidEntryError(
            name, f"contains a lone surrogate at position {err.start}; it is not valid Unicode"
        ) from None
    return value


def optional_text(name: str, value: object) -> str | None:
    """Return ``value`` if it is None or a str.

    Lone surrogates are caught when the record is serialized (see
    [`unencodable`][comply_lab.model.validate.unencodable]), which keeps this check cheap on the
    logging path.
    """
    if value is None or type(value) is str:
        return value
    return text(name, value)


def flag(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool."""
    if value is not True and value is not False:
        raise InvalidEntryError(name, f"expected True or False, got {value!r}")
    return value


def text_list(name: str, value: object) -> list[str]:
    """Return ``value`` (None, or a list or tuple of str) as a new list."""
    if not value and (value is None or type(value) is list):
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidEntryError(name, f"expected a list of str, got {type(value).__name__}")
    return [text(f"{name}[{i}]", item) for i, item in enumerate(value)]


def latency(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite, non-negative number."""
    if type(value) is float and 0.0 <= value < math.inf:
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEntryError(name, f"expected milliseconds as a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result) or result < 0:
        raise InvalidEntryError(name, f"must be a finite number >= 0, got {value!r}")
    return result


def tokens(name: str, value: object) -> int | None:
    """Return ``value`` if it is None or a non-negative int."""
    if value is None or (type(value) is int and 0 <= value < _INT64):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _INT64:
        raise InvalidEntryError(name, f"expected a whole number of tokens >= 0, got {value!r}")
    return value


METADATA_MAX_DEPTH = 64
"""How deeply metadata may nest dicts and lists (the top-level dict is depth 1)."""
METADATA_MAX_SIZE = 1 << 20
"""About how large metadata may be as JSON: characters of keys and strings, 8 per other value."""


def metadata(name: str, value: object) -> dict[str, Any]:
    """Return ``value`` as a dict if it holds JSON values only, within the limits.

    JSON values are str, finite float, int within 64 bits, bool, None, and lists, tuples and
    str-keyed dicts of them; tuples come back as lists, as JSON reads them. Nesting deeper than
    [`METADATA_MAX_DEPTH`][comply_lab.model.validate.METADATA_MAX_DEPTH] or larger than
    [`METADATA_MAX_SIZE`][comply_lab.model.validate.METADATA_MAX_SIZE] is refused; the check
    walks the value without recursion, so any depth gets this error.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidEntryError(name, f"expected a dict, got {type(value).__name__}")
    if type(value) is dict and all(type(k) is str and type(v) in _FLAT for k, v in value.items()):
        size = sum(len(k) + (len(v) if type(v) is str else 8) for k, v in value.items())
        if size <= METADATA_MAX_SIZE:
            return value  # the common flat case; surrogates are caught at serialization
    result = _json_value(name, value)
    assert isinstance(result, dict)
    return result


def subject(field: str | None, metadata: Mapping[str, Any] | None) -> str | None:
    """Return the data subject an entry's ``metadata[field]`` names, or None.

    Raises:
        InvalidEntryError: the value is neither a non-empty string nor an integer.
    """
    if not field or not metadata or metadata.get(field) is None:
        return None
    value = metadata[field]
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise InvalidEntryError(
            f"metadata.{field}", "a data subject must be a non-empty string or an integer"
        )
    return str(value)


def _json_value(path: str, value: object) -> object:
    """Return ``value`` as plain JSON values (tuples as lists), walked without recursion.

    Raises:
        InvalidEntryError: a value is not JSON, or the limits on depth and size are passed.
    """
    root: list[object] = [None]
    # Each task: (where it goes, index or key there, the value, its path, its depth).
    tasks: list[tuple[Any, Any, object, str, int]] = [(root, 0, value, path, 0)]
    size = 0
    while tasks:
        into, slot, item, where, depth = tasks.pop()
        if isinstance(item, Mapping | list | tuple):
            if depth >= METADATA_MAX_DEPTH:
                raise InvalidEntryError(
                    path,
                    f"nests deeper than {METADATA_MAX_DEPTH} levels (METADATA_MAX_DEPTH); "
                    "flatten it or store it as a JSON string",
                )
            size += 8
            if isinstance(item, Mapping):
                made: dict[str, object] = {}
                for key, inner in item.items():
                    if not isinstance(key, str):
                        raise InvalidEntryError(where, f"keys must be str, got {key!r}")
                    text(f"{where} key", key)  # lone surrogates cannot be stored
                    size += len(key)
                    made[key] = None
                    tasks.append((made, key, inner, f"{where}[{key!r}]", depth + 1))
                into[slot] = made
            else:
                listed: list[object] = [None] * len(item)
                tasks.extend(
                    (listed, i, inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item)
                )
                into[slot] = listed
        else:
            into[slot] = _json_scalar(where, item)
            size += len(item) if isinstance(item, str) else 8
        if size > METADATA_MAX_SIZE:
            raise InvalidEntryError(
                path,
                f"is larger than {METADATA_MAX_SIZE} characters as JSON (METADATA_MAX_SIZE); "
                "store large values as content or elsewhere and keep a reference here",
            )
    return root[0]


def _json_scalar(path: str, value: object) -> object:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return text(path, value)
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise InvalidEntryError(path, "integers must fit in 64 bits; store it as a str")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEntryError(path, f"{value} is not a JSON number; store it as a str")
        return value
    raise InvalidEntryError(
        path,
        f"{type(value).__name__} is not JSON-serializable; convert it to str, number, "
        "bool, None, list or dict",
    )


def unencodable(record: Mapping[str, object]) -> InvalidEntryError:
    """Return the error for a record that failed to serialize, naming the field at fault."""
    for name, value in record.items():
        try:
            _json_value(name, value)
        except InvalidEntryError as err:
            return err
    return InvalidEntryError("entry", "cannot be serialized as JSON")


def no_unknown(unknown: Mapping[str, object], known: Sequence[str]) -> None:
    """Raise `UnknownFieldError` if ``unknown`` holds any keyword."""
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"valid fields: {', '.join(known)}"
        raise UnknownFieldError(name, f"not an audit entry field; {hint}")


_CALL_CHECKS: dict[str, Callable[[str, object], object]] = {
    "provider": optional_text,
    "model": optional_text,
    "conversation_id": optional_text,
    "safety_passed": flag,
    "detectors_triggered": text_list,
    "block_reason": optional_text,
    "alerts": text_list,
    "latency_ms": latency,
    "input_tokens": tokens,
    "output_tokens": tokens,
    "metadata": metadata,
}


def stored_fields(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Return an entry's fields but content and chain, each checked as ``log()`` checks it.

    What a store's ``write(entry)`` records of an entry built elsewhere: ``id`` and the
    two fingerprints must be text, ``timestamp`` the ISO string of an entry.

    Raises:
        InvalidEntryError: a value cannot be stored (the error names the field).
    """
    fields: dict[str, Any] = {
        "id": text("id", entry.get("id")),
        "timestamp": entry.get("timestamp"),
        "input_hash": text("input_hash", entry.get("input_hash")),
        "output_hash": text("output_hash", entry.get("output_hash")),
    }
    for name, check in _CALL_CHECKS.items():
        fields[name] = check(name, entry.get(name))
    fields["hash_key_id"] = optional_text("hash_key_id", entry.get("hash_key_id"))
    return fields
