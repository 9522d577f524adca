"""A real RFC 3161 time-stamp authority on 127.0.0.1, for tests: OpenSSL's ``ts -reply``.

:func:`authority` makes a test CA and a time-stamping certificate it signs (critical
extended key usage ``timeStamping``) with the ``openssl`` command, then serves
``POST /`` (``application/timestamp-query``) by running ``openssl ts -reply`` on the
request. Yields the URL, the CA certificate's path, and the list of requests answered.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/tsa.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
[ tsa_ext ]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, nonRepudiation
extendedKeyUsage = critical, timeStamping
"""


@dataclass
class Authority:
    """A running test authority."""

    url: str
    ca_cert: Path
    folder: Path
    requests: list[bytes] = field(default_factory=list)


def _openssl(folder: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)


def _make_certificates(folder: Path) -> None:
    (folder / "openssl.cnf").write_text(_CONFIG.format(dir=folder))
    (folder / "serial").write_text("01\n")
    _openssl(folder, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
             "/CN=comply-lab test CA")  # fmt: skip
    _openssl(folder, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "tsa.key", "-out", "tsa.csr", "-subj",
             "/CN=comply-lab test TSA")  # fmt: skip
    _openssl(folder, "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "tsa.pem", "-days", "2", "-extfile", "openssl.cnf",
             "-extensions", "tsa_ext")  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        return

    def do_POST(self) -> None:
        authority: Authority = self.server.authority  # type: ignore[attr-defined]
        query = self.rfile.read(int(self.headers["Content-Length"]))
        authority.requests.append(query)
        with tempfile.TemporaryDirectory(dir=authority.folder) as work:
            (Path(work) / "q.tsq").write_bytes(query)
            command = ["openssl", "ts", "-reply", "-config", "openssl.cnf"]
            files = ["-queryfile", f"{work}/q.tsq", "-out", f"{work}/r.tsr"]
            done = subprocess.run([*command, *files], cwd=authority.folder, capture_output=True)
            if done.returncode:
                self.send_response(400)
                self.end_headers()
                return
            body = (Path(work) / "r.tsr").read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/timestamp-reply")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextmanager
def authority() -> Iterator[Authority]:
    """Run a test time-stamp authority on 127.0.0.1 until the block ends."""
    with tempfile.TemporaryDirectory(prefix="tsa-") as folder:
        path = Path(folder)
        _make_certificates(path)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        running = Authority(f"http://127.0.0.1:{server.server_port}/", path / "ca.pem", path)
        server.authority = running  # type: ignore[attr-defined]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield running
        finally:
            server.shutdown()
            server.server_close()
