"""A small HTTP server on 127.0.0.1 that answers like the OpenAI API, for integration tests.

It serves ``POST /v1/chat/completions`` and ``POST /v1/responses``, plain and streamed
(server-sent events). The answer repeats the prompt: ``"echo: <prompt>"``. A prompt
containing ``FAIL`` gets an HTTP 500 error body; one containing ``BROKEN`` gets a stream
that breaks in the middle (an event that is not JSON).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _prompt(body: dict[str, Any]) -> str:
    items = body.get("messages") or body.get("input")
    if isinstance(items, str):
        return items
    content = items[-1]["content"]
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content)
    return str(content)


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def log_message(self, *args: object) -> None:
        return

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body})  # type: ignore[attr-defined]
        prompt = _prompt(body)
        if "FAIL" in prompt:
            self._json(500, {"error": {"message": "upstream exploded", "type": "server_error"}})
            return
        answer = f"echo: {prompt}"
        model = body.get("model", "gpt-test")
        usage_chat = {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": len(answer.split()),
        }
        usage_chat["total_tokens"] = sum(usage_chat.values())
        if self.path.endswith("/chat/completions"):
            if body.get("stream"):
                self._chat_stream(answer, model, usage_chat, body, broken="BROKEN" in prompt)
            else:
                self._json(200, _chat(answer, model, usage_chat))
        elif self.path.endswith("/responses"):
            usage = {
                "input_tokens": usage_chat["prompt_tokens"],
                "output_tokens": usage_chat["completion_tokens"],
                "total_tokens": usage_chat["total_tokens"],
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            }
            if body.get("stream"):
                self._responses_stream(answer, model, usage)
            else:
                self._json(200, _response(answer, model, usage))
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _events(self, events: Iterator[tuple[str | None, dict[str, Any] | str]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for name, payload in events:
            text = payload if isinstance(payload, str) else json.dumps(payload)
            prefix = f"event: {name}\n" if name else ""
            self.wfile.write(f"{prefix}data: {text}\n\n".encode())
            self.wfile.flush()
            time.sleep(0.005)
        self.close_connection = True

    def _chat_stream(
        self,
        answer: str,
        model: str,
        usage: dict[str, int],
        body: dict[str, Any],
        broken: bool,
    ) -> None:
        def events() -> Iterator[tuple[str | None, dict[str, Any] | str]]:
            base = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
            }
            words = answer.split(" ")
            for i, word in enumerate(words):
                if broken and i == 2:
                    raise ConnectionAbortedError  # the connection drops mid-stream
                text = word if i == 0 else f" {word}"
                yield None, dict(base, choices=[{"index": 0, "delta": {"content": text}}])
            yield None, dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
            if (body.get("stream_options") or {}).get("include_usage"):
                yield None, dict(base, choices=[], usage=usage)
            yield None, "[DONE]"

        try:
            self._events(events())
        except ConnectionAbortedError:
            self.wfile.write(b'data: {"broken\n\n')
            self.wfile.flush()
            self.close_connection = True

    def _responses_stream(self, answer: str, model: str, usage: dict[str, Any]) -> None:
        final = _response(answer, model, usage)

        def events() -> Iterator[tuple[str | None, dict[str, Any] | str]]:
            started = dict(final, status="in_progress", output=[], usage=None)
            yield (
                "response.created",
                {"type": "response.created", "response": started, "sequence_number": 0},
            )
            for i, word in enumerate(answer.split(" ")):
                yield (
                    "response.output_text.delta",
                    {
                        "type": "response.output_text.delta",
                        "item_id": "msg_1",
                        "output_index": 0,
                        "content_index": 0,
                        "delta": word if i == 0 else f" {word}",
                        "sequence_number": i + 1,
                        "logprobs": [],
                    },
                )
            yield (
                "response.completed",
                {"type": "response.completed", "response": final, "sequence_number": 99},
            )

        self._events(events())


def _chat(answer: str, model: str, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer},
                "finish_reason": "stop",
            }
        ],
        "usage": usage,
    }


def _response(answer: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 0,
        "model": model,
        "status": "completed",
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": answer, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


@contextmanager
def llm_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Run the server in a thread; yield its ``/v1`` base URL and the requests it got."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
