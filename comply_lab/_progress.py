"""Progress bars that appear only when a scan takes more than a moment."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

from tqdm.auto import tqdm

DELAY_S = 0.75
"""A bar appears only after this many seconds, so quick scans print nothing."""


def progress_bar(total: int, desc: str, *, enabled: bool | None) -> AbstractContextManager[Any]:
    """Return a tqdm bar (a widget in notebooks) or a silent stand-in.

    Args:
        total: Number of steps.
        desc: Label.
        enabled: True always shows it (after the delay), False never; None shows it only
            on terminals and notebooks, and ``COMPLY_LAB_PROGRESS=0`` turns it off.
    """
    if enabled is None and os.environ.get("COMPLY_LAB_PROGRESS", "1") == "0":
        enabled = False
    disable = None if enabled is None else not enabled
    bar: AbstractContextManager[Any] = tqdm(
        total=total, desc=desc, unit="segment", delay=DELAY_S, disable=disable, leave=False
    )
    return bar
