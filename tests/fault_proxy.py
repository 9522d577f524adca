"""A fault-injecting HTTP proxy on 127.0.0.1, between boto3 and the local S3 server.

Each request is, at random (seeded) with the configured rates: answered ``503 Slow Down``
or ``500`` without reaching the server; forwarded and then the connection dropped before
the answer (the server did the work, the client cannot know); delayed; or forwarded
normally. ``fail_all`` makes every request a 503, for the retry budget.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Faults:
    """Fault rates (0 to 1) and what was injected so far."""

    error_rate: float = 0.0
    drop_rate: float = 0.0
    slow_rate: float = 0.0
    slow_s: float = 0.2
    fail_all: bool = False
    seed: int = 1
    injected: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.lock = threading.Lock()

    def draw(self) -> str:
        """Pick what happens to the next request."""
        with self.lock:
            if self.fail_all:
                choice = "503"
            else:
                roll = self.random.random()
                if roll < self.error_rate:
                    choice = self.random.choice(["503", "500"])
                elif roll < self.error_rate + self.drop_rate:
                    choice = "drop"
                elif roll < self.error_rate + self.drop_rate + self.slow_rate:
                    choice = "slow"
                else:
                    choice = "pass"
            self.injected[choice] += 1
            return choice


@contextmanager
def fault_proxy(target: str, faults: Faults) -> Iterator[str]:
    """Run the proxy in a thread; yield its URL (use it as ``endpoint_url``)."""
    upstream = urlsplit(target)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            return

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            choice = faults.draw()
            if choice in ("503", "500"):
                text = b"<Error><Code>SlowDown</Code><Message>injected</Message></Error>"
                self.send_response(int(choice))
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
                return
            if choice == "slow":
                time.sleep(faults.slow_s)
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            connection.close()
            if choice == "drop":  # the server did it; the client never hears
                self.close_connection = True
                return
            self.send_response(answer.status, answer.reason)
            for key, value in answer.getheaders():
                if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
