"""Fuzzing every parser: whatever the bytes, only comply_lab's own exceptions escape.

Hypothesis drives each parser with random and mutated inputs: JSONL lines, manifest and
other trail records (through verification), checkpoints, retention and hold records, key
rings and subject key files. ``COMPLY_LAB_FUZZ_EXAMPLES`` sets the examples per target
(300 in CI; ``make fuzz`` runs far more).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from comply_lab import AuditLogger, ComplyLabError, KeyRing
from comply_lab.audit import FileStorage, SubjectKeys
from comply_lab.integrity.checkpoint import Checkpoint
from comply_lab.integrity.verify import verify
from comply_lab.retention.holds import read_policy
from comply_lab.retention.policy import retention_events
from comply_lab.storage.jsonl import parse_segment, summarize_jsonl
from comply_lab.storage.manifest import HOLDS, MANIFEST, RETENTION, parse_records

EXAMPLES = int(os.environ.get("COMPLY_LAB_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _valid_lines() -> list[bytes]:
    """Real log lines and records, for mutation."""
    import tempfile

    root = Path(tempfile.mkdtemp())
    with AuditLogger(FileStorage(root), store_content=True) as logger:
        for i in range(3):
            logger.log_sync(input=f"q{i}", output="a", metadata={"k": [i, {"x": None}]})
    lines = []
    for path in root.glob("*.jsonl"):
        lines += path.read_bytes().splitlines()
    return lines


SEEDS = _valid_lines()
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Return a real line with bytes flipped, cut, inserted or a field replaced."""
    line = bytearray(draw(st.sampled_from(SEEDS)))
    how = draw(st.sampled_from(["flip", "cut", "insert", "field", "raw"]))
    if how == "flip" and line:
        i = draw(st.integers(0, len(line) - 1))
        line[i] ^= draw(st.integers(1, 255))
    elif how == "cut":
        line = line[: draw(st.integers(0, len(line)))]
    elif how == "insert":
        i = draw(st.integers(0, len(line)))
        line[i:i] = draw(st.binary(max_size=8))
    elif how == "field":
        record = orjson.loads(bytes(line))
        record[draw(st.sampled_from(sorted(record)))] = draw(json_values)
        line = bytearray(orjson.dumps(record))
    else:
        line = bytearray(draw(st.binary(max_size=300)))
    return bytes(line)


lines_strategy = st.lists(mutated(), max_size=6)


def _only_ours(call: Callable[[], Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.suppress(ComplyLabError):
            call()


@FUZZ
@given(lines=lines_strategy, tail=st.binary(max_size=40))
def test_jsonl_segments(lines: list[bytes], tail: bytes) -> None:
    """Parsing and counting JSONL never raises anything but our errors."""
    data = b"\n".join(lines) + b"\n" + tail
    _only_ours(lambda: list(parse_segment(data, "fuzz.jsonl")))
    _only_ours(lambda: summarize_jsonl(data))


@FUZZ
@given(
    lines=lines_strategy,
    records=st.lists(json_values | mutated(), max_size=5),
    name=st.sampled_from(
        [MANIFEST, RETENTION, HOLDS, "_access.jsonl", "_keys.jsonl", "_shredded.jsonl"]
    ),
)
def test_stores_with_damaged_lines_and_trails_verify(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], records: list[Any], name: str
) -> None:
    """Verification, retention and hold readers survive any segment and trail content."""
    root = tmp_path_factory.mktemp("store")
    (root / "audit_20260129.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    trail = b"\n".join(r if isinstance(r, bytes) else orjson.dumps(r) for r in records)
    (root / name).write_bytes(trail)
    storage = FileStorage(root)
    _only_ours(lambda: verify(storage, progress=False))
    _only_ours(lambda: read_policy(storage))
    _only_ours(lambda: retention_events(storage))
    _only_ours(lambda: list(parse_records(trail)))
    _only_ours(lambda: storage.count_sync())


@FUZZ
@given(
    value=st.one_of(
        st.text(),
        json_values.map(lambda v: orjson.dumps(v).decode()),
        st.fixed_dictionaries(
            {"format": st.just("comply-lab-checkpoint/1")},
            optional={"records": json_values, "entries": json_values, "root": json_values},
        ),
    )
)
def test_checkpoints(value: Any) -> None:
    """Loading a checkpoint from anything fails only with our error."""
    _only_ours(lambda: Checkpoint.load(value))


@FUZZ
@given(
    text=st.text(max_size=200)
    | st.builds(
        lambda ids, keys: ",".join(f"{i}:{k}" for i, k in zip(ids, keys, strict=False)),
        st.lists(st.text(max_size=5), max_size=3),
        st.lists(st.text(alphabet="ABCDEFabcdef0123456789-_=", max_size=50), max_size=3),
    )
)
def test_key_rings(text: str) -> None:
    """Key ring text of any shape loads or fails with InvalidKeyError."""
    _only_ours(lambda: KeyRing.from_text(text))


@FUZZ
@given(body=st.binary(max_size=200) | json_values.map(orjson.dumps))
def test_subject_key_files(tmp_path_factory: pytest.TempPathFactory, body: bytes) -> None:
    """A damaged subject key file fails with our errors only."""
    directory = tmp_path_factory.mktemp("keys")
    keys = SubjectKeys(directory, KeyRing.generate())
    key_id = keys.write_key(None, "alice")[0]
    next(directory.glob("*.key")).write_bytes(body)
    fresh = SubjectKeys(directory, keys.wrapping)
    _only_ours(lambda: fresh.read_key(key_id, "e", "input_content"))
    _only_ours(lambda: fresh.write_key(None, "alice"))
