"""One AI interaction being recorded: timing, safety checks, failures, then one entry.

[`Interaction`][comply_lab.audit.interaction.Interaction] is what ``logger.interaction(...)``
returns and what the OpenAI and LangChain integrations use underneath, so every integration logs
the same way:

- the latency is measured from [`start`][comply_lab.audit.interaction.Interaction.start] to the
  end,
and the time to
  the first streamed token (``metadata["ttft_ms"]``) when
  [`first_token`][comply_lab.audit.interaction.Interaction.first_token] is called;
- a safety check (any callable ``check(input, output) -> SafetyVerdict | None``) runs on the
  input before the call (``output`` None) and on the output after it. A blocking verdict logs
  the entry as the original tutorial logs a safety event — output ``""`` when the input was
  blocked, ``safety_passed=False``, the detectors, block reason and alerts,
  ``metadata["blocked_at"]`` of ``"input"`` or ``"output"`` — and raises
  [`RequestBlockedError`][comply_lab.errors.RequestBlockedError];
- an exception from the call is logged as a failed entry (``metadata["error"]`` with its
  type and message, an ``error: <type>`` alert) and re-raised unchanged.

Example:
    >>> with logger.interaction(model="llama-3", input=prompt) as rec:  # doctest: +SKIP
    ...     rec.output = generate(prompt)
    ...     rec.output_tokens = count_tokens(rec.output)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from comply_lab.errors import RequestBlockedError

if TYPE_CHECKING:
    from comply_lab.audit.logger import AuditLogger


@dataclass
class SafetyVerdict:
    """What a safety check decided about an input or output.

    Attributes:
        passed: Whether every check passed.
        detectors: Names of the detectors that fired.
        block_reason: Why the request or answer is blocked, if it is.
        alerts: Warnings to record, blocked or not.
        block: Whether to block; by default a verdict that did not pass blocks.
    """

    passed: bool = True
    detectors: list[str] = field(default_factory=list)
    block_reason: str | None = None
    alerts: list[str] = field(default_factory=list)
    block: bool | None = None

    @property
    def blocks(self) -> bool:
        """Whether this verdict stops the request (or withholds the answer)."""
        return (not self.passed) if self.block is None else self.block


SafetyCheck = Callable[[str, str | None], SafetyVerdict | None]
"""``check(input, output)``: output is None before the call, the answer after it."""


class Interaction:
    """Records one AI interaction and logs it as one entry when it ends.

    Use it as a context manager (``with`` or ``async with``) around the call, setting ``output``
    (and tokens) inside; or call [`start`][comply_lab.audit.interaction.Interaction.start] and
    then [`finish`][comply_lab.audit.interaction.Interaction.finish] or
    [`fail`][comply_lab.audit.interaction.Interaction.fail] (and their ``_async`` forms) as the
    integrations do.

    Args:
        logger: Where the entry goes.
        input: The prompt (may also be set after creation, before
            [`start`][comply_lab.audit.interaction.Interaction.start]).
        provider: AI provider.
        model: Model name (update it if the answer names the exact model).
        conversation_id: Conversation the interaction belongs to.
        metadata: Extra metadata for the entry.
        safety: A safety check run on the input and on the output.

    Attributes:
        entry_id: The logged entry's id, once logged.
    """

    def __init__(
        self,
        logger: AuditLogger,
        *,
        input: str = "",
        provider: str | None = None,
        model: str | None = None,
        conversation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        safety: SafetyCheck | None = None,
    ) -> None:
        self.logger = logger
        self.input = input
        self.output = ""
        self.provider = provider
        self.model = model
        self.conversation_id = conversation_id
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.safety = safety
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.safety_passed = True
        self.detectors_triggered: list[str] = []
        self.block_reason: str | None = None
        self.alerts: list[str] = []
        self.entry_id: str | None = None
        self._started: float | None = None
        self._first_token: float | None = None

    def __repr__(self) -> str:
        return (
            f"Interaction(provider={self.provider!r}, model={self.model!r}, "
            f"entry_id={self.entry_id!r})"
        )

    # -- steps -------------------------------------------------------------------------

    def start(self) -> Interaction:
        """Start the clock and check the input; log and raise if the check blocks it.

        Raises:
            RequestBlockedError: the safety check blocked the input (the entry is logged).
        """
        self._started = time.perf_counter()
        verdict = self._check(None)
        if verdict is not None and verdict.blocks:
            self.output = ""
            self.entry_id = self.logger.log_sync(**self._blocked(verdict, "input"))
            raise self._blocked_error(verdict, "input")
        return self

    def first_token(self) -> None:
        """Mark the arrival of the first streamed token (only the first call counts)."""
        if self._first_token is None:
            self._first_token = time.perf_counter()

    def finish(self) -> str:
        """Check the output and log the entry; return its id.

        Raises:
            RequestBlockedError: the safety check blocked the output (the entry is logged).
        """
        verdict = self._check(self.output)
        if verdict is not None and verdict.blocks:
            self.entry_id = self.logger.log_sync(**self._blocked(verdict, "output"))
            raise self._blocked_error(verdict, "output")
        self.entry_id = self.logger.log_sync(**self._fields())
        return self.entry_id

    def fail(self, error: BaseException) -> str:
        """Log the interaction as failed with ``error``; return the entry id."""
        self._record_error(error)
        self.entry_id = self.logger.log_sync(**self._fields())
        return self.entry_id

    async def start_async(self) -> Interaction:
        """Async form of [`start`][comply_lab.audit.interaction.Interaction.start]."""
        self._started = time.perf_counter()
        verdict = self._check(None)
        if verdict is not None and verdict.blocks:
            self.output = ""
            self.entry_id = await self.logger.log(**self._blocked(verdict, "input"))
            raise self._blocked_error(verdict, "input")
        return self

    async def finish_async(self) -> str:
        """Async form of [`finish`][comply_lab.audit.interaction.Interaction.finish]."""
        verdict = self._check(self.output)
        if verdict is not None and verdict.blocks:
            self.entry_id = await self.logger.log(**self._blocked(verdict, "output"))
            raise self._blocked_error(verdict, "output")
        self.entry_id = await self.logger.log(**self._fields())
        return self.entry_id

    async def fail_async(self, error: BaseException) -> str:
        """Async form of [`fail`][comply_lab.audit.interaction.Interaction.fail]."""
        self._record_error(error)
        self.entry_id = await self.logger.log(**self._fields())
        return self.entry_id

    # -- context managers ------------------------------------------------------------

    def __enter__(self) -> Interaction:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if error is None:
            self.finish()
        elif not isinstance(error, RequestBlockedError):
            self.fail(error)
        return False

    async def __aenter__(self) -> Interaction:
        return await self.start_async()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]:
        if error is None:
            await self.finish_async()
        elif not isinstance(error, RequestBlockedError):
            await self.fail_async(error)
        return False

    # -- the entry ---------------------------------------------------------------------

    def _check(self, output: str | None) -> SafetyVerdict | None:
        if self.safety is None:
            return None
        verdict = self.safety(self.input, output)
        if verdict is not None:
            fired = [d for d in verdict.detectors if d not in self.detectors_triggered]
            self.detectors_triggered += fired
            self.alerts += verdict.alerts
            if not verdict.passed:
                self.safety_passed = False
        return verdict

    def _blocked(self, verdict: SafetyVerdict, where: str) -> dict[str, Any]:
        self.safety_passed = False
        self.block_reason = verdict.block_reason or "blocked by the safety check"
        self.metadata["blocked_at"] = where
        return self._fields()

    def _blocked_error(self, verdict: SafetyVerdict, where: str) -> RequestBlockedError:
        return RequestBlockedError(
            f"the {where} was blocked by the safety check: {self.block_reason}",
            entry_id=self.entry_id or "",
            verdict=verdict,
        )

    def _record_error(self, error: BaseException) -> None:
        name = type(error).__name__
        self.metadata["error"] = {"type": name, "message": str(error)[:1000]}
        self.alerts.append(f"error: {name}")

    def _fields(self) -> dict[str, Any]:
        now = time.perf_counter()
        started = self._started if self._started is not None else now
        if self._first_token is not None:
            self.metadata["ttft_ms"] = round((self._first_token - started) * 1000, 3)
        return {
            "input": self.input,
            "output": self.output,
            "provider": self.provider,
            "model": self.model,
            "conversation_id": self.conversation_id,
            "safety_passed": self.safety_passed,
            "detectors_triggered": self.detectors_triggered,
            "block_reason": self.block_reason,
            "alerts": self.alerts,
            "latency_ms": (now - started) * 1000,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "metadata": self.metadata,
        }
