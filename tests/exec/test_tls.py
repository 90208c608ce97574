"""A worker keeps OpenSSL out until a function makes an HTTP call, and then HTTPS works."""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme
from cluster.lab import start_cluster
from e2e.node import BIN, LOOPBACK_ENV
from fixtures.build import c
from fixtures.servers import serving

SECRET = b"served over TLS"

SCRIPT = """
import sys
from pathlib import Path
from fless._openssl import defer_openssl
defer_openssl()
import asyncio  # imports ssl optionally: must not load it now
import hashlib, hmac
assert sys.modules.get("ssl") is None, "ssl loaded despite defer_openssl"
assert "libcrypto" not in Path("/proc/self/maps").read_text(), "OpenSSL loaded"
print(hashlib.sha256(b"fless").hexdigest())
print(hmac.digest(b"k" * 70, b"beacon", "sha256").hex())
from fless.exec._hostcalls import _opener
opener = _opener()  # a function's first HTTP call
import ssl, urllib.request
assert ssl.OPENSSL_VERSION
assert any(isinstance(h, urllib.request.HTTPSHandler) for h in opener.handlers)
print("ok")
"""


def test_openssl_is_deferred_until_the_first_outbound_request() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    # Without OpenSSL, CPython's own SHA-2 gives the digests OpenSSL gives here.
    assert done.stdout.split() == [
        hashlib.sha256(b"fless").hexdigest(),
        hmac.digest(b"k" * 70, b"beacon", "sha256").hex(),
        "ok",
    ]


def test_without_its_own_sha2_python_keeps_openssls_hashes() -> None:
    # As on a CPython built with OpenSSL's hashes only: hashlib must still work.
    script = (
        "import sys\n"
        "sys.modules['_sha2'] = sys.modules['_sha512'] = None\n"
        "from fless._openssl import defer_openssl\n"
        "defer_openssl()\n"
        "import hashlib, random\n"
        "assert sys.modules.get('ssl', 0) is None, 'ssl not deferred'\n"
        "print(hashlib.sha256(b'fless').hexdigest())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [hashlib.sha256(b"fless").hexdigest()]


def test_a_worker_process_runs_without_openssl_loaded(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    env.update(LOOPBACK_ENV, FLESS_CLUSTER_INSECURE="true")
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "fless-node"), "--role", "worker", "--data-dir", str(tmp_path / "w")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while "ready: RPC on" not in log.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
        assert "libssl" not in maps and "libcrypto" not in maps and "_ssl." not in maps
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class _Secret(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(SECRET)))
        self.end_headers()
        self.wfile.write(SECRET)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def https_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback with a certificate from a fresh CA: host:port, the CA file."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Secret)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with serving(server) as host:
        yield host, ca_file


def test_a_function_on_a_worker_fetches_over_https(tmp_path: Path) -> None:
    # The worker started without OpenSSL; its function's first request is HTTPS.
    # The worker trusts the test's CA through OpenSSL's SSL_CERT_FILE.
    with (
        https_server(tmp_path) as (host, ca_file),
        start_cluster(tmp_path, {"w": 512}, worker_env={"SSL_CERT_FILE": str(ca_file)}) as cluster,
    ):
        assert cluster.core.upload("_", "get", c("http_get"), {"http_allow": [host]})[0] == 201
        status, body, worker = cluster.invoke("get", {"url": f"https://{host}/"})
        assert worker == cluster.workers["w"].name
        assert (status, body) == (200, {"data": {"status": 200, "length": len(SECRET)}}), (
            cluster.workers["w"].log()
        )
