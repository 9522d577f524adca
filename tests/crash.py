"""A crash harness: run an operation in a forked child that dies at its n-th mutation.

Every call that changes durable state — ``os.write``/``pwrite``/``fsync``/``link``/
``rename``/``replace``/``unlink``/``rmdir``/``mkdir``/``ftruncate``, opening a file for
writing, and each mutating S3 request (before it is sent and after its answer) — is a
*kill point*. The child counts them and at the chosen one calls ``os._exit``, which, like
SIGKILL, runs no cleanup and flushes nothing; the parent then restarts, recovers and
checks. A dry run counts the kill points an operation has, so trials can cover all of
them (stratified when there are more points than trials).

The child acknowledges progress (for example an entry id once ``log()`` returned) through
a pipe, written with the real ``os.write`` so acknowledgements are not kill points.
"""

from __future__ import annotations

import builtins
import io
import os
import random
from collections.abc import Callable
from typing import Any

KILLED = 137
_OS_CALLS = (
    "write",
    "pwrite",
    "fsync",
    "link",
    "rename",
    "replace",
    "unlink",
    "rmdir",
    "mkdir",
    "ftruncate",
)
_S3_MUTATIONS = {"PutObject", "DeleteObject", "DeleteObjects", "CopyObject"}
TRIALS = int(os.environ.get("COMPLY_LAB_CRASH_TRIALS", "200"))
"""Kill points per path: 200 in CI, more with ``COMPLY_LAB_CRASH_TRIALS`` (``make crash``)."""

Ack = Callable[[str], None]


class _Switch:
    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.count = 0

    def point(self) -> None:
        self.count += 1
        if self.count == self.kill_at:
            os._exit(KILLED)


def _install(switch: _Switch) -> None:
    for name in _OS_CALLS:
        original = getattr(os, name)

        def wrapper(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            switch.point()
            return _original(*args, **kwargs)

        setattr(os, name, wrapper)
    real_os_open = os.open

    def os_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            switch.point()
        return real_os_open(path, flags, *args, **kwargs)

    os.open = os_open  # type: ignore[assignment]
    real_open = builtins.open

    def open_(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if any(c in mode for c in "wax+"):
            switch.point()
        return real_open(file, mode, *args, **kwargs)

    builtins.open = open_  # type: ignore[assignment]
    io.open = open_  # type: ignore[assignment]
    try:
        from botocore.client import BaseClient
    except ImportError:  # pragma: no cover - boto3 is a dependency
        return
    real_call = BaseClient._make_api_call

    def api_call(self: Any, operation: str, params: Any) -> Any:
        mutating = operation in _S3_MUTATIONS
        if mutating:
            switch.point()  # dies before the request is sent
        result = real_call(self, operation, params)
        if mutating:
            switch.point()  # dies after the server took it, before anyone knows
        return result

    BaseClient._make_api_call = api_call  # type: ignore[method-assign]


def run_child(action: Callable[[Ack], None], kill_at: int | None) -> tuple[bool, list[str], int]:
    """Run ``action(ack)`` in a forked child, killed at kill point ``kill_at`` (None: never).

    Returns:
        Whether it was killed, what it acknowledged, and how many kill points it passed.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_end)
        write = os.write
        switch = _Switch(kill_at)

        def ack(text: str) -> None:
            write(write_end, text.encode() + b"\n")

        try:
            _install(switch)
            action(ack)
            write(write_end, f"#points {switch.count}\n".encode())
            os._exit(0)
        except BaseException as error:  # report, never fall back into the test runner
            write(write_end, f"#error {type(error).__name__}: {error}\n".encode())
            os._exit(1)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    lines = b"".join(chunks).decode().splitlines()
    errors = [line for line in lines if line.startswith("#error")]
    assert not errors, errors[0]
    code = os.waitstatus_to_exitcode(status)
    points = [int(line.split()[1]) for line in lines if line.startswith("#points")]
    acked = [line for line in lines if not line.startswith("#")]
    return code == KILLED, acked, points[0] if points else -1


def kill_points(total: int, trials: int = TRIALS, seed: int = 7) -> list[int]:
    """Return ``trials`` kill points over ``1..total``: distinct, drawn at random.

    With fewer points than trials every point is used, round-robin (the workloads vary
    from trial to trial, so repeated points still see different data).
    """
    if total <= 0:
        raise AssertionError("the operation made no durable change: nothing to kill")
    if total <= trials:
        return [1 + i % total for i in range(trials)]
    return sorted(random.Random(seed).sample(range(1, total + 1), trials))
