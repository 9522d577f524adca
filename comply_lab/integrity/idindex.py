"""Verifying the id index (see [`comply_lab.storage.idindex`][comply_lab.storage.idindex]).

Lookups trust a run the way readers trust a part; verification checks it: every run
an authentic record of the ``_ids.jsonl`` trail says is in use must hold exactly the
bytes that record names. A run changed, cut or removed is reported, since a run that no
longer lists an id would make lookups miss that entry.
"""

from __future__ import annotations

import hashlib
from typing import Any

from comply_lab.integrity.report import Problem
from comply_lab.storage.base import Storage
from comply_lab.storage.idindex import live_runs_of, run_segment


def check_runs(storage: Storage, records: list[dict[str, Any]]) -> list[Problem]:
    """Report each live run that is gone or differs from its authentic record."""
    problems = []
    for record in live_runs_of(records):
        name = str(record["file"])
        try:
            data = storage.read_segment(run_segment(record))
        except FileNotFoundError:
            problems.append(
                Problem(
                    "missing",
                    "this id index run is gone: lookups of ids that do not name their day "
                    "read the parts it covered in full; run comply-lab compact to rebuild it",
                    segment=name,
                )
            )
            continue
        if hashlib.sha256(data).hexdigest() != record.get("sha256"):
            problems.append(
                Problem(
                    "modified",
                    "this id index run does not hold the bytes its record names: it was "
                    "changed, and lookups through it may miss entries",
                    segment=name,
                )
            )
    return problems
