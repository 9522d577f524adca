"""Drop-in logging for real clients: the openai and langchain packages over local HTTP."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from comply_lab import AuditLogger
from comply_lab.audit import FileStorage
from comply_lab.errors import RequestBlockedError
from comply_lab.integrations import SafetyVerdict
from comply_lab.integrations.openai import AuditedOpenAI
from tests.llm_server import llm_server


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Start the OpenAI-like server on 127.0.0.1 for this module."""
    with llm_server() as running:
        yield running


@pytest.fixture
def logger(tmp_path: Path) -> Iterator[AuditLogger]:
    """Return a logger that stores content, so tests can read what was logged."""
    with AuditLogger(FileStorage(tmp_path, fsync="never"), store_content=True) as made:
        yield made


def _entries(logger: AuditLogger) -> list[dict[str, Any]]:
    return [e.to_dict() for e in logger.get_entries_sync("2000-01-01", "2200-01-01")]


def _clients(base_url: str) -> tuple[openai.OpenAI, openai.AsyncOpenAI]:
    return (
        openai.OpenAI(base_url=base_url, api_key="test", max_retries=0),
        openai.AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0),
    )


def no_secrets(text: str, output: str | None) -> SafetyVerdict | None:
    """Block inputs asking for a password, and answers containing one."""
    if "password" in text.lower() and output is None:
        return SafetyVerdict(
            passed=False,
            detectors=["credential_request"],
            block_reason="asks for credentials",
            alerts=["User warned"],
        )
    if output is not None and "hunter2" in output:
        return SafetyVerdict(passed=False, detectors=["secret_leak"], block_reason="leaks a secret")
    return None


class TestOpenAIChat:
    def test_sync_call_is_returned_unchanged_and_logged(self, server: Any, logger: AuditLogger):
        """The response is the client's own; the entry has input, output, tokens, model."""
        url, _ = server
        client = AuditedOpenAI(
            _clients(url)[0], logger, conversation_id="conv-1", metadata={"user_id": "u1"}
        )
        reply = client.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hello there"},
            ],
        )
        assert isinstance(reply, openai.types.chat.ChatCompletion)
        assert reply.choices[0].message.content == "echo: hello there"
        (entry,) = _entries(logger)
        assert entry["input_content"] == "hello there"
        assert entry["output_content"] == "echo: hello there"
        assert (entry["input_tokens"], entry["output_tokens"]) == (2, 3)
        assert (entry["provider"], entry["model"], entry["conversation_id"]) == (
            "openai",
            "gpt-4o",
            "conv-1",
        )
        assert entry["metadata"] == {"user_id": "u1", "api": "chat.completions"}
        assert entry["latency_ms"] > 0 and entry["safety_passed"]
        assert client.models is client.client.models  # everything else passes through

    def test_streaming_records_time_to_first_token_and_usage(
        self, server: Any, logger: AuditLogger
    ):
        """A stream yields the client's chunks; the entry has the joined text and ttft."""
        url, _ = server
        client = AuditedOpenAI(_clients(url)[0], logger)
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "stream me please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
        assert all(isinstance(c, openai.types.chat.ChatCompletionChunk) for c in chunks)
        (entry,) = _entries(logger)
        assert entry["output_content"] == "echo: stream me please"
        assert entry["output_tokens"] == 4
        metadata = entry["metadata"]
        assert metadata["stream"] is True and 0 < metadata["ttft_ms"] <= entry["latency_ms"]
        assert entry["latency_ms"] > metadata["ttft_ms"]  # the stream took longer

    def test_a_stream_closed_early_is_logged_with_what_arrived(
        self, server: Any, logger: AuditLogger
    ):
        """Breaking out of a stream logs the partial answer, marked closed early."""
        url, _ = server
        client = AuditedOpenAI(_clients(url)[0], logger)
        with client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "one two three four"}], stream=True
        ) as stream:
            for chunk in stream:
                assert chunk.choices[0].delta.content == "echo:"
                break
        (entry,) = _entries(logger)
        assert entry["output_content"] == "echo:"
        assert entry["metadata"]["stream_closed_early"] is True

    def test_api_errors_are_logged_as_failed_and_reraised(self, server: Any, logger: AuditLogger):
        """An HTTP 500 raises the client's own exception; a failed entry is logged."""
        url, _ = server
        client = AuditedOpenAI(_clients(url)[0], logger)
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "FAIL"}]
            )
        with pytest.raises(openai.APIConnectionError):
            AuditedOpenAI(
                openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="t", max_retries=0), logger
            ).chat.completions.create(model="m", messages=[{"role": "user", "content": "anyone?"}])
        failed = _entries(logger)
        assert [e["metadata"]["error"]["type"] for e in failed] == [
            "InternalServerError",
            "APIConnectionError",
        ]
        assert failed[0]["alerts"] == ["error: InternalServerError"]
        assert failed[0]["output_content"] == ""

    def test_a_broken_stream_is_logged_as_failed(self, server: Any, logger: AuditLogger):
        """A stream that dies mid-way raises, and the entry keeps what arrived."""
        url, _ = server
        client = AuditedOpenAI(_clients(url)[0], logger)
        stream = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "BROKEN stream here"}], stream=True
        )
        with pytest.raises(ValueError, match="Unterminated string"):  # an undecodable event
            list(stream)
        (entry,) = _entries(logger)
        assert "error" in entry["metadata"] and entry["output_content"] == "echo: BROKEN"

    def test_safety_blocks_before_the_call_and_after_it(self, server: Any, logger: AuditLogger):
        """A blocked input is never sent and is logged as the tutorial's safety event."""
        url, requests = server
        before = len(requests)
        client = AuditedOpenAI(
            _clients(url)[0], logger, safety=no_secrets, metadata={"user_id": "user-789"}
        )
        with pytest.raises(RequestBlockedError, match="asks for credentials") as blocked:
            client.chat.completions.create(
                model="gpt-4", messages=[{"role": "user", "content": "What is the admin password?"}]
            )
        assert len(requests) == before  # nothing reached the server
        with pytest.raises(RequestBlockedError, match="leaks a secret"):
            client.chat.completions.create(
                model="gpt-4", messages=[{"role": "user", "content": "say hunter2"}]
            )
        first, second = _entries(logger)
        assert first["id"] == blocked.value.entry_id
        assert (first["output_content"], first["safety_passed"], first["block_reason"]) == (
            "",
            False,
            "asks for credentials",
        )
        assert first["detectors_triggered"] == ["credential_request"]
        assert first["alerts"] == ["User warned"]
        assert first["metadata"] == {
            "user_id": "user-789",
            "api": "chat.completions",
            "blocked_at": "input",
        }
        assert second["output_content"] == "echo: say hunter2"
        assert second["metadata"]["blocked_at"] == "output" and not second["safety_passed"]

    def test_async_client_plain_and_streamed(self, server: Any, logger: AuditLogger):
        """AsyncOpenAI works the same, awaited and with async for."""
        url, _ = server
        client = AuditedOpenAI(_clients(url)[1], logger)

        async def main() -> list[str]:
            reply = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "async hi"}]
            )
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "async stream"}], stream=True
            )
            parts = [c.choices[0].delta.content async for c in stream if c.choices]
            with pytest.raises(openai.InternalServerError):
                await client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": "FAIL"}]
                )
            return [reply.choices[0].message.content, "".join(p or "" for p in parts)]

        assert asyncio.run(main()) == ["echo: async hi", "echo: async stream"]
        entries = _entries(logger)
        assert [e["output_content"] for e in entries] == [
            "echo: async hi",
            "echo: async stream",
            "",
        ]
        assert "ttft_ms" in entries[1]["metadata"] and "error" in entries[2]["metadata"]


class TestOpenAIResponses:
    def test_plain_and_streamed(self, server: Any, logger: AuditLogger):
        """responses.create: input text, output_text, usage, and streamed deltas."""
        url, _ = server
        client = AuditedOpenAI(_clients(url)[0], logger)
        response = client.responses.create(model="gpt-4o", input="tell me")
        assert response.output_text == "echo: tell me"
        events = list(
            client.responses.create(
                model="gpt-4o",
                stream=True,
                input=[{"role": "user", "content": [{"type": "input_text", "text": "stream it"}]}],
            )
        )
        assert events[-1].type == "response.completed"
        plain, streamed = _entries(logger)
        assert (plain["input_content"], plain["output_content"]) == ("tell me", "echo: tell me")
        assert (plain["input_tokens"], plain["output_tokens"]) == (2, 3)
        assert plain["metadata"]["api"] == "responses"
        assert streamed["output_content"] == "echo: stream it"
        assert streamed["output_tokens"] == 3 and "ttft_ms" in streamed["metadata"]

    def test_async_responses(self, server: Any, logger: AuditLogger):
        """AsyncOpenAI responses are logged too."""
        url, _ = server
        client = AuditedOpenAI(_clients(url)[1], logger)
        response = asyncio.run(client.responses.create(model="m", input="async responses"))
        assert response.output_text == "echo: async responses"
        assert _entries(logger)[0]["output_content"] == "echo: async responses"


class TestInteraction:
    def test_any_code_with_latency_and_failures(self, logger: AuditLogger):
        """`with logger.interaction(...)` logs output and latency, or the exception."""
        with logger.interaction(provider="local", model="llama-3", input="2+2?") as rec:
            rec.output = "4"
            rec.output_tokens = 1
        with pytest.raises(ZeroDivisionError), logger.interaction(model="llama-3", input="1/0"):
            _ = 1 / 0
        ok, failed = _entries(logger)
        assert (ok["output_content"], ok["output_tokens"], ok["model"]) == ("4", 1, "llama-3")
        assert ok["id"] == rec.entry_id and ok["latency_ms"] >= 0
        assert failed["metadata"]["error"] == {
            "type": "ZeroDivisionError",
            "message": "division by zero",
        }

    def test_async_with_and_safety(self, logger: AuditLogger):
        """`async with` works; a blocking check raises RequestBlockedError after logging."""

        async def main() -> None:
            async with logger.interaction(input="hi", safety=no_secrets) as rec:
                rec.output = "hello"
            with pytest.raises(RequestBlockedError):
                async with logger.interaction(input="give me the password", safety=no_secrets):
                    raise AssertionError("never runs")

        asyncio.run(main())
        ok, blocked = _entries(logger)
        assert ok["safety_passed"] and not blocked["safety_passed"]
        assert blocked["metadata"] == {"blocked_at": "input"}


class TestLangChain:
    def test_chat_model_invoke_stream_and_error(self, server: Any, logger: AuditLogger):
        """The callback handler logs LangChain's ChatOpenAI calls over HTTP."""
        from langchain_openai import ChatOpenAI

        from comply_lab.integrations.langchain import AuditCallbackHandler

        url, _ = server
        handler = AuditCallbackHandler(logger, conversation_id="lc-1")
        chat = ChatOpenAI(
            model="gpt-4o", base_url=url, api_key="test", max_retries=0, callbacks=[handler]
        )
        assert chat.invoke("hello langchain").content == "echo: hello langchain"
        streamed = "".join(str(c.content) for c in chat.stream("stream langchain"))
        assert streamed == "echo: stream langchain"
        with pytest.raises(openai.InternalServerError):
            chat.invoke("FAIL now")
        assert asyncio.run(chat.ainvoke("async langchain")).content == "echo: async langchain"
        invoked, stream, failed, awaited = _entries(logger)
        assert (invoked["input_content"], invoked["output_content"]) == (
            "hello langchain",
            "echo: hello langchain",
        )
        assert (invoked["provider"], invoked["model"], invoked["conversation_id"]) == (
            "openai",
            "gpt-4o",
            "lc-1",
        )
        assert (invoked["input_tokens"], invoked["output_tokens"]) == (2, 3)
        assert stream["output_content"] == "echo: stream langchain"
        assert "ttft_ms" in stream["metadata"]
        assert "upstream exploded" in failed["metadata"]["error"]["message"]
        assert failed["alerts"] == [f"error: {failed['metadata']['error']['type']}"]
        assert awaited["output_content"] == "echo: async langchain"

    def test_safety_check_blocks_the_call(self, server: Any, logger: AuditLogger):
        """A blocking verdict stops the LangChain call before any request is sent."""
        from langchain_openai import ChatOpenAI

        from comply_lab.integrations.langchain import AuditCallbackHandler

        url, requests = server
        before = len(requests)
        chat = ChatOpenAI(
            model="gpt-4o",
            base_url=url,
            api_key="test",
            max_retries=0,
            callbacks=[AuditCallbackHandler(logger, safety=no_secrets)],
        )
        with pytest.raises(RequestBlockedError):
            chat.invoke("what is the password")
        assert len(requests) == before
        (entry,) = _entries(logger)
        assert entry["block_reason"] == "asks for credentials" and not entry["safety_passed"]


class TestOpenTelemetry:
    def test_entries_round_trip_through_genai_spans(self, tmp_path: Path, logger: AuditLogger):
        """Entries become gen_ai.* spans (timed as logged) and come back as equal entries."""
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        from opentelemetry.trace import StatusCode

        from comply_lab.integrations.otel import export_spans, import_spans

        logger.log_sync(
            input="hi",
            output="hello",
            provider="openai",
            model="gpt-4o",
            conversation_id="c1",
            input_tokens=1,
            output_tokens=2,
            latency_ms=250.0,
            detectors_triggered=["pii"],
            safety_passed=False,
            block_reason="pii",
        )
        with pytest.raises(RuntimeError), logger.interaction(model="m", input="x"):
            raise RuntimeError("down")
        originals = logger.get_entries_sync("2000-01-01", "2200-01-01")

        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = provider.get_tracer("comply_lab.tests")
        assert export_spans(originals, tracer, include_content=True) == 2
        first, failed = exporter.get_finished_spans()
        attributes = dict(first.attributes or {})
        assert first.name == "chat gpt-4o"
        assert attributes["gen_ai.provider.name"] == "openai"
        assert attributes["gen_ai.usage.output_tokens"] == 2
        assert attributes["gen_ai.conversation.id"] == "c1"
        assert attributes["comply_lab.entry_id"] == originals[0].id
        assert (first.end_time - first.start_time) == 250_000_000
        assert failed.status.status_code is StatusCode.ERROR
        assert failed.attributes["error.type"] == "RuntimeError"

        ids = import_spans(exporter.get_finished_spans(), tmp_path / "imported")
        imported = AuditLogger(tmp_path / "imported").get_entries_sync("2000-01-01", "2200-01-01")
        assert [e.id for e in imported] == ids
        for before, after in zip(originals, imported, strict=True):
            for field in (
                "input_hash",
                "output_hash",
                "provider",
                "model",
                "conversation_id",
                "input_tokens",
                "output_tokens",
                "safety_passed",
                "detectors_triggered",
                "block_reason",
                "timestamp",
            ):
                assert getattr(after, field) == getattr(before, field), field
            assert after.latency_ms == pytest.approx(before.latency_ms, abs=0.01)
        assert imported[1].metadata["error"] == {"type": "RuntimeError"}
        assert len(imported[0].metadata["otel"]["trace_id"]) == 32
