"""OpenTelemetry GenAI interop: entries out as spans, spans in as entries.

Attribute names follow the OpenTelemetry semantic conventions for generative AI
(``gen_ai.*``); what they do not cover is under ``comply_lab.*``:

==================================  ==========================================
entry                               span
==================================  ==========================================
provider                            ``gen_ai.provider.name`` (and ``gen_ai.system``)
model                               ``gen_ai.request.model``, ``gen_ai.response.model``
conversation_id                     ``gen_ai.conversation.id``
input_tokens, output_tokens         ``gen_ai.usage.input_tokens``, ``..output_tokens``
input/output text (opt-in)          ``gen_ai.input.messages``, ``gen_ai.output.messages``
metadata["error"]["type"]           ``error.type`` and an error status
timestamp - latency_ms, timestamp   span start and end
id, hashes, safety fields           ``comply_lab.entry_id``, ``comply_lab.input_hash``, ...
==================================  ==========================================

Content leaves only when asked (``include_content=True``) and only where it is stored
as plain text: the conventions treat message content as opt-in, and ciphertext would be
useless to a tracing backend.

Needs ``opentelemetry-api`` (and an SDK or exporter of your choice).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from comply_lab._time import to_utc
from comply_lab.audit.logger import AuditLogger
from comply_lab.crypto.ciphertext import looks_encrypted
from comply_lab.model.entry import AuditEntry
from comply_lab.storage.base import Storage

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IMPORTED = ("chat", "text_completion", "generate_content")


def span_attributes(entry: AuditEntry, *, include_content: bool = False) -> dict[str, Any]:
    """Return the span attributes of an entry (None values left out)."""
    error = (entry.metadata or {}).get("error")
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": entry.provider,
        "gen_ai.system": entry.provider,
        "gen_ai.request.model": entry.model,
        "gen_ai.response.model": entry.model,
        "gen_ai.conversation.id": entry.conversation_id,
        "gen_ai.usage.input_tokens": entry.input_tokens,
        "gen_ai.usage.output_tokens": entry.output_tokens,
        "error.type": error.get("type") if isinstance(error, dict) else None,
        "comply_lab.entry_id": entry.id,
        "comply_lab.input_hash": entry.input_hash,
        "comply_lab.output_hash": entry.output_hash,
        "comply_lab.safety_passed": entry.safety_passed,
        "comply_lab.detectors_triggered": list(entry.detectors_triggered),
        "comply_lab.block_reason": entry.block_reason,
        "comply_lab.alerts": list(entry.alerts),
    }
    if include_content:
        for name, role, text in (
            ("gen_ai.input.messages", "user", entry.input_content),
            ("gen_ai.output.messages", "assistant", entry.output_content),
        ):
            if isinstance(text, str) and not looks_encrypted(text):
                attributes[name] = json.dumps(
                    [{"role": role, "parts": [{"type": "text", "content": text}]}]
                )
    return {k: v for k, v in attributes.items() if v is not None and v != []}


def export_spans(
    entries: Iterable[AuditEntry], tracer: Tracer, *, include_content: bool = False
) -> int:
    """Emit one span per entry through ``tracer``, timed as the interaction was.

    Returns:
        The number of spans emitted.
    """
    count = 0
    for entry in entries:
        end = to_utc(entry.timestamp)
        start = end - timedelta(milliseconds=entry.latency_ms or 0.0)
        attributes = span_attributes(entry, include_content=include_content)
        span = tracer.start_span(
            f"chat {entry.model}" if entry.model else "chat",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            start_time=_ns(start),
        )
        if "error.type" in attributes:
            span.set_status(Status(StatusCode.ERROR, str(attributes["error.type"])))
        span.end(end_time=_ns(end))
        count += 1
    return count


def import_spans(
    spans: Iterable[Any],
    storage: Storage | str,
    *,
    store_content: bool = True,
    encryption: Any = None,
) -> list[str]:
    """Log GenAI spans (``ReadableSpan`` objects) as entries, at the spans' own times.

    Spans whose ``gen_ai.operation.name`` is not a model call are skipped. The entry's
    time is the span's end and its latency the span's duration; the trace and span ids
    are kept in ``metadata["otel"]``.

    Args:
        spans: Finished spans, e.g. from an ``InMemorySpanExporter`` or a span processor.
        storage: Where to log (a storage object or a directory).
        store_content: Store message text found in the spans (encrypted if ``encryption``).
        encryption: Keys for the stored content, as for
            [`AuditLogger`][comply_lab.audit.logger.AuditLogger].

    Returns:
        The ids of the entries logged.
    """
    moment = [_EPOCH]
    logger = AuditLogger(storage, encryption, store_content=store_content, clock=lambda: moment[0])
    ids = []
    for span in spans:
        attributes: Mapping[str, Any] = span.attributes or {}
        if attributes.get("gen_ai.operation.name") not in _IMPORTED:
            continue
        start, end = span.start_time or 0, span.end_time or span.start_time or 0
        moment[0] = _EPOCH + timedelta(microseconds=end // 1000)
        context = span.get_span_context()
        metadata: dict[str, Any] = {
            "otel": {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}
        }
        if attributes.get("error.type"):
            metadata["error"] = {"type": attributes["error.type"]}
        ids.append(
            logger.log_sync(
                input=_message_text(attributes.get("gen_ai.input.messages")),
                output=_message_text(attributes.get("gen_ai.output.messages")),
                provider=attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system"),
                model=attributes.get("gen_ai.response.model")
                or attributes.get("gen_ai.request.model"),
                conversation_id=attributes.get("gen_ai.conversation.id"),
                safety_passed=bool(attributes.get("comply_lab.safety_passed", True)),
                detectors_triggered=list(attributes.get("comply_lab.detectors_triggered", [])),
                block_reason=attributes.get("comply_lab.block_reason"),
                alerts=list(attributes.get("comply_lab.alerts", [])),
                latency_ms=max(end - start, 0) / 1e6,
                input_tokens=attributes.get("gen_ai.usage.input_tokens"),
                output_tokens=attributes.get("gen_ai.usage.output_tokens"),
                metadata=metadata,
            )
        )
    logger.close()
    return ids


def _message_text(value: Any) -> str:
    """Return the text parts of a ``gen_ai.*.messages`` attribute (JSON), joined."""
    if not isinstance(value, str):
        return ""
    try:
        messages = json.loads(value)
    except json.JSONDecodeError:
        return value
    texts = [
        str(part.get("content", ""))
        for message in messages
        if isinstance(message, dict)
        for part in message.get("parts", [])
        if isinstance(part, dict) and part.get("type") == "text"
    ]
    return "\n".join(texts)


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000
