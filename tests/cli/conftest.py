"""Fixtures: a fake fless server (plain and TLS) and a clean CLI environment."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .fake_fless import FakeFless, serve


@pytest.fixture
def fake() -> Iterator[FakeFless]:
    """A fake fless server over plain HTTP."""
    yield from serve(FakeFless())


@pytest.fixture
def tls_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: ``(cert, key)``."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_fake(tls_cert: tuple[Path, Path]) -> Iterator[FakeFless]:
    """A fake fless server over HTTPS, with the certificate of ``tls_cert``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*tls_cert)
    yield from serve(FakeFless(), context)


@pytest.fixture(autouse=True)
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keeps the user's real settings out: a fresh config directory, no FLESS_URL/FLESS_KEY.

    Returns:
        The config directory (``XDG_CONFIG_HOME``).
    """
    config = tmp_path / "xdg"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLESS_URL", raising=False)
    monkeypatch.delenv("FLESS_KEY", raising=False)
    return config
