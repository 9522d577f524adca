"""A property: honest operations always verify; any single edit of the result never does.

For random sequences of honest operations — logging, sealing, reopening, holds and
releases, retention, decryption, key rotation, shredding — on every backend, verification
with the writer's key and a checkpoint taken at the end is OK. Then, one at a time, a
random edit of the resulting bytes — a flipped byte, a line deleted, duplicated or
swapped, a file truncated, deleted or copied under another name — and verification must
not be OK. ``make fuzz`` runs many more examples (``COMPLY_LAB_TAMPER_EXAMPLES``);
``bench/tamper_trials.py`` counts them by kind of edit.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tamper import OPERATIONS, run_trial

pytestmark = pytest.mark.slow  # random honest histories on every backend

EXAMPLES = int(os.environ.get("COMPLY_LAB_TAMPER_EXAMPLES", "8"))
histories = st.lists(st.sampled_from(OPERATIONS), min_size=2, max_size=8)


def check_history(backend: str, operations: list[str], seed: int, endpoint: str | None) -> int:
    """Run one history and its edits; return how many edits were tried (all caught)."""
    trial = run_trial(backend, operations, seed, endpoint)
    assert trial.honest.ok, f"{trial.done}: honest operations gave\n{trial.honest}"
    for edit, report in trial.edits:
        assert not report.ok, f"{trial.done}: edit '{edit}' went unseen:\n{report}"
    return len(trial.edits)


SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("backend", ["jsonl", "parquet"])
@SETTINGS
@given(operations=histories, seed=st.integers(0, 2**32))
def test_local_logs(backend: str, operations: list[str], seed: int) -> None:
    """Local JSONL and Parquet logs: honest histories verify, every single edit is caught."""
    assert check_history(backend, operations, seed, None) >= 4


@pytest.mark.parametrize("backend", ["s3-jsonl", "s3-parquet"])
@settings(SETTINGS, max_examples=max(EXAMPLES // 2, 2))
@given(operations=histories, seed=st.integers(0, 2**32))
def test_s3_logs(s3_endpoint: str, backend: str, operations: list[str], seed: int) -> None:
    """S3 logs, JSONL and Parquet objects: the same property."""
    assert check_history(backend, operations, seed, s3_endpoint) >= 4


def test_an_edit_that_leaves_no_tree_of_the_checkpoints_size_is_a_finding():
    """Found by the property: an edit after retention made the tree raise LookupError."""
    operations = ["release", "log", "retention", "compact", "hold", "hold", "reopen", "hold"]
    assert check_history("parquet", operations, 14133, None) >= 4
