"""A LangChain callback handler that logs every chat-model and LLM call.

Pass it in ``callbacks=[AuditCallbackHandler(logger)]`` to a model (or to ``invoke``'s
config). Each call becomes one entry, as in
`comply_lab.audit.interaction`:
the last human message (or prompt) as input, the generated text as output, provider and
model from LangChain's run metadata (``ls_provider``, ``ls_model_name``), token usage,
latency, the time to the first streamed token, and errors as failed entries.

The handler sets ``raise_error``: a blocking safety verdict raises
[`RequestBlockedError`][comply_lab.errors.RequestBlockedError] out of the model call before
anything is sent, and a failure to write the audit log is not silently swallowed.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult

from comply_lab.audit.interaction import Interaction, SafetyCheck
from comply_lab.audit.logger import AuditLogger


class AuditCallbackHandler(BaseCallbackHandler):
    """Logs LangChain model calls to an [`AuditLogger`][comply_lab.audit.logger.AuditLogger].

    Args:
        logger: Where entries go.
        provider: Provider to record (default: LangChain's ``ls_provider``).
        conversation_id: Conversation of every call.
        metadata: Metadata added to every entry.
        safety: A safety check run on each input and output.

    Example:
        >>> handler = AuditCallbackHandler(logger, conversation_id="c-1")  # doctest: +SKIP
        >>> chat = ChatOpenAI(model="gpt-4o", callbacks=[handler])         # doctest: +SKIP
    """

    raise_error = True

    def __init__(
        self,
        logger: AuditLogger,
        *,
        provider: str | None = None,
        conversation_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        safety: SafetyCheck | None = None,
    ) -> None:
        self.logger = logger
        self.provider = provider
        self.conversation_id = conversation_id
        self.metadata = dict(metadata or {})
        self.safety = safety
        self._runs: dict[UUID, Interaction] = {}

    def _begin(self, text: str, run_id: UUID, metadata: dict[str, Any] | None, **kw: Any) -> None:
        run = metadata or {}
        params = kw.get("invocation_params") or {}
        record = Interaction(
            self.logger,
            input=text,
            provider=self.provider or run.get("ls_provider"),
            model=run.get("ls_model_name") or params.get("model") or params.get("model_name"),
            conversation_id=self.conversation_id,
            metadata=dict(self.metadata, api="langchain"),
            safety=self.safety,
        )
        record.start()
        self._runs[run_id] = record

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start recording a chat-model call: the last human message is the input."""
        batch = messages[-1] if messages else []
        human = [m for m in batch if getattr(m, "type", None) == "human"] or batch
        text = _text(human[-1].content) if human else ""
        self._begin(text, run_id, metadata, **kwargs)

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Start recording a text-completion call: the last prompt is the input."""
        self._begin(prompts[-1] if prompts else "", run_id, metadata, **kwargs)

    def on_llm_new_token(
        self, token: str | list[str | dict[str, Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        """Note the first streamed token's arrival."""
        record = self._runs.get(run_id)
        if record is not None and token:
            record.first_token()

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        """Log the finished call with its text, model and token usage."""
        record = self._runs.pop(run_id, None)
        if record is None:
            return
        generation = response.generations[0][0] if response.generations else None
        message = getattr(generation, "message", None)
        record.output = _text(getattr(message, "content", None)) or (
            generation.text if generation is not None else ""
        )
        output = response.llm_output or {}
        usage = output.get("token_usage") or {}
        meta = getattr(message, "usage_metadata", None) or {}
        record.input_tokens = usage.get("prompt_tokens", meta.get("input_tokens"))
        record.output_tokens = usage.get("completion_tokens", meta.get("output_tokens"))
        model = output.get("model_name") or (getattr(message, "response_metadata", None) or {}).get(
            "model_name"
        )
        record.model = model or record.model
        record.finish()

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Log the call as failed."""
        record = self._runs.pop(run_id, None)
        if record is not None:
            record.fail(error)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = [p.get("text", "") if isinstance(p, dict) else str(p) for p in content or []]
    return "".join(parts)
