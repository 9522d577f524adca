"""Audited OpenAI-compatible clients: the same calls, each one logged.

Wrap an ``openai.OpenAI`` or ``openai.AsyncOpenAI`` client (or one pointed at any
OpenAI-compatible server through ``base_url``). ``chat.completions.create`` and
``responses.create`` behave exactly as the client's own — same arguments, same return
values, streams included — and each call is logged as one entry (see
`comply_lab.audit.interaction`):

- input: the last user message (chat) or the ``input`` (responses); output: the answer
  text (tool calls as JSON when there is no text);
- the model the server reports, token usage, the latency, and for streams the time to
  the first token (``metadata["ttft_ms"]``) and ``metadata["stream"] = True``; a stream is
  logged when it ends, is closed, or fails. Streamed chat completions carry token usage
  only when asked for (``stream_options={"include_usage": True}``);
- API errors are logged as failed entries and re-raised; the safety check blocks before the call
  (nothing is sent) or withholds the answer after it, raising
  [`RequestBlockedError`][comply_lab.errors.RequestBlockedError]. A streamed answer has already
  been shown when its check runs at the end of the stream: a blocking verdict is logged and
  raised then.

Everything else on the client passes through unchanged.

Example:
    >>> import openai                                                  # doctest: +SKIP
    >>> client = AuditedOpenAI(openai.OpenAI(), logger, conversation_id="c-1")
    >>> reply = client.chat.completions.create(model="gpt-4o", messages=[...])
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from comply_lab.audit.interaction import Interaction, SafetyCheck
from comply_lab.audit.logger import AuditLogger


class AuditedOpenAI:
    """An OpenAI (or AsyncOpenAI) client whose completions and responses are logged.

    Args:
        client: ``openai.OpenAI()`` or ``openai.AsyncOpenAI()`` (any base URL).
        logger: Where entries go.
        provider: The provider name to record.
        conversation_id: Conversation of every call; ``audit_conversation_id=`` on one
            call sets it for that call (it is not sent to the server).
        metadata: Metadata added to every entry.
        safety: A safety check run on each input and output.
    """

    def __init__(
        self,
        client: Any,
        logger: AuditLogger,
        *,
        provider: str = "openai",
        conversation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        safety: SafetyCheck | None = None,
    ) -> None:
        self.client = client
        self.logger = logger
        self.provider = provider
        self.conversation_id = conversation_id
        self.metadata = dict(metadata or {})
        self.safety = safety
        self.is_async = type(client).__name__.startswith("Async")
        self.chat = _Namespace(completions=_Endpoint(self, "chat.completions"))
        self.responses = _Endpoint(self, "responses")

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def __repr__(self) -> str:
        return f"AuditedOpenAI({self.client!r}, logger={self.logger!r})"


class _Namespace:
    def __init__(self, **members: Any) -> None:
        self.__dict__.update(members)


class _Endpoint:
    """``create`` of one API, logged; every other attribute is the client's."""

    def __init__(self, owner: AuditedOpenAI, api: str) -> None:
        self.owner = owner
        self.api = api
        target = owner.client
        for part in api.split("."):
            target = getattr(target, part)
        self.target = target

    def __getattr__(self, name: str) -> Any:
        return getattr(self.target, name)

    def _interaction(self, kwargs: dict[str, Any]) -> Interaction:
        owner = self.owner
        conversation = kwargs.pop("audit_conversation_id", owner.conversation_id)
        if self.api == "responses":
            text = _last_user_text(kwargs.get("input"))
        else:
            text = _last_user_text(kwargs.get("messages"))
        metadata = dict(owner.metadata, api=self.api)
        if kwargs.get("stream"):
            metadata["stream"] = True
        return Interaction(
            owner.logger,
            input=text,
            provider=owner.provider,
            model=kwargs.get("model"),
            conversation_id=conversation,
            metadata=metadata,
            safety=owner.safety,
        )

    def create(self, **kwargs: Any) -> Any:
        """Call the API's ``create`` and log the interaction (async clients: await it)."""
        if self.owner.is_async:
            return self._create_async(**kwargs)
        record = self._interaction(kwargs).start()
        try:
            result = self.target.create(**kwargs)
        except BaseException as error:
            record.fail(error)
            raise
        if kwargs.get("stream"):
            return _Stream(result, record, self.api)
        _take_response(record, result, self.api)
        record.finish()
        return result

    async def _create_async(self, **kwargs: Any) -> Any:
        record = await self._interaction(kwargs).start_async()
        try:
            result = await self.target.create(**kwargs)
        except BaseException as error:
            await record.fail_async(error)
            raise
        if kwargs.get("stream"):
            return _AsyncStream(result, record, self.api)
        _take_response(record, result, self.api)
        await record.finish_async()
        return result


class _StreamState:
    """What a stream has delivered so far, and logging it exactly once."""

    def __init__(self, stream: Any, record: Interaction, api: str) -> None:
        self.stream = stream
        self.record = record
        self.api = api
        self.parts: list[str] = []
        self.done = False

    def take(self, event: Any) -> None:
        text = _event_text(event, self.api)
        if text:
            self.record.first_token()
            self.parts.append(text)
        _take_usage(self.record, event, self.api)

    def ending(self, closed_early: bool) -> bool:
        if self.done:
            return False
        self.done = True
        self.record.output = "".join(self.parts)
        if closed_early:
            self.record.metadata["stream_closed_early"] = True
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


class _Stream(_StreamState):
    """A logged synchronous stream: iterate it as the client's own."""

    def __iter__(self) -> Iterator[Any]:
        try:
            for event in self.stream:
                self.take(event)
                yield event
        except GeneratorExit:  # the caller stopped iterating
            if self.ending(closed_early=True):
                self.record.finish()
            raise
        except BaseException as error:
            if self.ending(closed_early=False):
                self.record.fail(error)
            raise
        if self.ending(closed_early=False):
            self.record.finish()

    def close(self) -> None:
        """Close the stream; log what arrived so far."""
        self.stream.close()
        if self.ending(closed_early=True):
            self.record.finish()

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _AsyncStream(_StreamState):
    """A logged asynchronous stream: ``async for`` it as the client's own."""

    async def __aiter__(self) -> AsyncIterator[Any]:
        try:
            async for event in self.stream:
                self.take(event)
                yield event
        except GeneratorExit:  # the caller stopped iterating; no awaiting allowed here
            if self.ending(closed_early=True):
                self.record.finish()
            raise
        except BaseException as error:
            if self.ending(closed_early=False):
                await self.record.fail_async(error)
            raise
        if self.ending(closed_early=False):
            await self.record.finish_async()

    async def close(self) -> None:
        """Close the stream; log what arrived so far."""
        await self.stream.close()
        if self.ending(closed_early=True):
            await self.record.finish_async()

    async def __aenter__(self) -> _AsyncStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _last_user_text(messages: Any) -> str:
    """Return the text of the last user message (or the input itself when it is text)."""
    if isinstance(messages, str):
        return messages
    for message in reversed(list(messages or [])):
        role = _get(message, "role")
        if role in (None, "user"):
            return _content_text(_get(message, "content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for part in content or []:
        text = _get(part, "text")
        if isinstance(text, str):
            parts.append(text)
    return "\n".join(parts)


def _take_response(record: Interaction, response: Any, api: str) -> None:
    record.model = _get(response, "model") or record.model
    if api == "responses":
        record.output = _get(response, "output_text") or ""
    else:
        choices = _get(response, "choices") or []
        message = _get(choices[0], "message") if choices else None
        record.output = _get(message, "content") or _tool_calls(message)
    _take_usage(record, response, api)


def _tool_calls(message: Any) -> str:
    calls = _get(message, "tool_calls") or []
    if not calls:
        return ""
    return json.dumps(
        [
            {
                "name": _get(_get(c, "function"), "name"),
                "arguments": _get(_get(c, "function"), "arguments"),
            }
            for c in calls
        ]
    )


def _take_usage(record: Interaction, obj: Any, api: str) -> None:
    if api == "responses":
        obj = _get(obj, "response") or obj
    usage = _get(obj, "usage")
    if usage is None:
        return
    names = (
        ("input_tokens", "output_tokens")
        if api == "responses"
        else (
            "prompt_tokens",
            "completion_tokens",
        )
    )
    record.input_tokens = _get(usage, names[0])
    record.output_tokens = _get(usage, names[1])
    record.model = _get(obj, "model") or record.model


def _event_text(event: Any, api: str) -> str | None:
    if api == "responses":
        if _get(event, "type") == "response.output_text.delta":
            delta = _get(event, "delta")
            return delta if isinstance(delta, str) else None
        return None
    choices = _get(event, "choices") or []
    delta = _get(choices[0], "delta") if choices else None
    text = _get(delta, "content")
    return text if isinstance(text, str) else None


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)
