"""Bad input to log(): typed errors naming the field, and nothing written."""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from comply_lab import AuditLogger, ComplyLabError, InvalidEntryError
from comply_lab.audit import FileStorage
from comply_lab.errors import UnknownFieldError
from tests.conftest import FakeClock

GOOD: dict[str, Any] = {"input": "q", "output": "a"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("input", None, "expected str, got NoneType"),
        ("input", b"bytes", "expected str, got bytes"),
        ("output", 42, "expected str, got int"),
        ("input", "bad \ud800 surrogate", "lone surrogate at position 4"),
        ("provider", 1, "expected str"),
        ("model", "\udfff", "lone surrogate"),
        ("safety_passed", "yes", "expected True or False"),
        ("safety_passed", 1, "expected True or False"),
        ("detectors_triggered", "pii", "expected a list of str"),
        ("detectors_triggered[1]", ["pii", 3], "expected str"),
        ("alerts[0]", [None], "expected str"),
        ("latency_ms", math.nan, "finite number >= 0"),
        ("latency_ms", -1.0, "finite number >= 0"),
        ("latency_ms", math.inf, "finite number >= 0"),
        ("latency_ms", "150", "expected milliseconds as a number"),
        ("latency_ms", True, "expected milliseconds"),
        ("input_tokens", -3, "whole number of tokens"),
        ("output_tokens", 2.5, "whole number of tokens"),
        ("input_tokens", 2**63, "whole number of tokens"),
        ("metadata", ["not", "a", "dict"], "expected a dict"),
        ("metadata['when']", {"when": datetime(2026, 1, 1)}, "datetime is not JSON-serializable"),
        ("metadata['x'][0]", {"x": [math.nan]}, "nan is not a JSON number"),
        ("metadata['n']", {"n": 2**70}, "fit in 64 bits"),
        ("metadata", {1: "int key"}, "keys must be str"),
        ("metadata['s']", {"s": {1, 2}}, "set is not JSON-serializable"),
        ("metadata['k']", {"k": "\ud800"}, "lone surrogate"),
    ],
)
def test_bad_value_raises_and_writes_nothing(
    tmp_path: Path, clock: FakeClock, field: str, value: object, message: str
):
    """Each bad value raises InvalidEntryError naming the field; the log stays empty."""
    storage = FileStorage(tmp_path)
    logger = AuditLogger(storage, clock=clock)
    name = field.split("[")[0]
    args = dict(GOOD)
    args[name] = value
    with pytest.raises(InvalidEntryError, match=message) as caught:
        logger.log_sync(**args)
    assert caught.value.field == field
    assert isinstance(caught.value, ComplyLabError | ValueError)
    assert storage.count_sync() == 0
    assert logger.log_sync(**GOOD)  # the chain is unharmed: the next entry is seq 0
    assert next(storage.read_day(clock.now.date())).seq == 0


def test_unknown_keyword_suggests_the_field(clock: FakeClock, tmp_path: Path):
    """A misspelled keyword raises UnknownFieldError (also a TypeError) with a suggestion."""
    logger = AuditLogger(tmp_path, clock=clock)
    with pytest.raises(UnknownFieldError, match=r"latency: .*did you mean 'latency_ms'") as caught:
        logger.log_sync(input="q", output="a", latency=3.0)  # type: ignore[call-arg]
    assert isinstance(caught.value, TypeError)
    with pytest.raises(UnknownFieldError, match="valid fields: input, output, provider"):
        logger.log_sync(input="q", output="a", zzz=1)  # type: ignore[call-arg]


def test_tuples_and_ints_are_accepted_as_json(clock: FakeClock, tmp_path: Path):
    """Tuples are stored as lists and ints as ints: what JSON reads back is what is returned."""
    logger = AuditLogger(tmp_path, clock=clock)
    entry_id = logger.log_sync(
        input="q",
        output="a",
        detectors_triggered=("pii",),
        latency_ms=3,
        metadata={"t": (1, "x"), "big": 2**62, "f": 0.1},
    )
    entry = logger.get_entry_sync(entry_id)
    assert entry is not None
    assert entry.detectors_triggered == ["pii"]
    assert entry.metadata == {"t": [1, "x"], "big": 2**62, "f": 0.1}


@pytest.mark.parametrize(
    "text", ["emoji 🚀🧪", "RTL مرحبا بالعالم", "NUL \x00 inside", "mixed\r\n\t\u2028\u2029", ""]
)
def test_any_unicode_round_trips(tmp_path: Path, clock: FakeClock, text: str):
    """Emoji, right-to-left text, NUL and line separators survive storage unchanged."""
    logger = AuditLogger(tmp_path, clock=clock, store_content=True)
    entry_id = logger.log_sync(input=text, output=text, provider=text, metadata={text: text})
    entry = AuditLogger(tmp_path).get_entry_sync(entry_id)
    assert entry is not None
    assert (entry.input_content, entry.provider, entry.metadata) == (text, text, {text: text})
