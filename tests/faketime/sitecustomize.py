"""Make Python's ``time.sleep`` work under Debian's libfaketime 0.9.10 (``make timeless``).

libfaketime moves the clock for the whole test run, but with ``FAKETIME_DONT_FAKE_MONOTONIC``
(needed, or every wait with a timeout hangs) it turns the absolute monotonic deadline of
Python's ``clock_nanosleep`` into an invalid one (``OSError: [Errno 22]``). Every Python
process of the run finds this module on ``PYTHONPATH`` and sleeps with ``select`` instead,
which libfaketime passes through.
"""

import os
import select
import time

if "faketime" in os.environ.get("LD_PRELOAD", ""):

    def _sleep(seconds: float) -> None:
        if seconds < 0:
            raise ValueError("sleep length must be non-negative")
        select.select([], [], [], seconds)

    time.sleep = _sleep
