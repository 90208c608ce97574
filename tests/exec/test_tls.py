"""A worker keeps OpenSSL out until a function makes an HTTP call, and then HTTPS works."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import sys
import time
from pathlib import Path

from e2e.node import BIN, LOOPBACK_ENV

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
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    # Without OpenSSL, CPython's own SHA-2 gives the digests OpenSSL gives here.
    assert done.stdout.split() == [
        hashlib.sha256(b"fless").hexdigest(),
        hmac.digest(b"k" * 70, b"beacon", "sha256").hex(),
        "ok",
    ]


def test_without_its_own_sha256_python_keeps_openssls_hashes() -> None:
    # As on a CPython built with OpenSSL's hashes only: hashlib must still work.
    script = (
        "import sys\n"
        "sys.modules['_sha2'] = sys.modules['_sha256'] = None\n"
        "from fless._openssl import defer_openssl\n"
        "defer_openssl()\n"
        "import hashlib\n"
        "assert sys.modules.get('ssl', 0) is None, 'ssl not deferred'\n"
        "print(hashlib.sha256(b'fless').hexdigest())\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [hashlib.sha256(b"fless").hexdigest()]


def test_a_worker_process_runs_without_openssl_loaded(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    env.update(LOOPBACK_ENV, FLESS_CLUSTER_INSECURE="true")
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(BIN / "fless-node"), "--role", "worker", "--data-dir", str(tmp_path / "w")],
            stdout=out, stderr=subprocess.STDOUT, env=env,
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
