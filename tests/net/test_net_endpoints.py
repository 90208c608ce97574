"""plaintext_allowed: plaintext only where traffic cannot leave the machine, or when told."""

from __future__ import annotations

import pytest

from fless.net import plaintext_allowed


@pytest.mark.parametrize(
    "endpoints",
    [
        [],
        ["tcp://127.0.0.1:7100"],
        ["tcp://127.0.0.1:0", "tcp://127.3.4.5:7100"],
        ["tcp://localhost:7100", "tcp://LOCALHOST:1"],
        ["tcp://[::1]:7100"],
        ["127.0.0.1:7100"],
        ["ipc:///run/fless.sock", "inproc://rpc"],
        ["tcp://127.0.0.1:5555;127.0.0.1:7100"],
    ],
)
def test_loopback_only_allows_plaintext(endpoints: list[str]) -> None:
    assert plaintext_allowed(endpoints, insecure=False)


@pytest.mark.parametrize(
    "endpoints",
    [
        ["tcp://10.0.0.2:7100"],
        ["tcp://127.0.0.1:7100", "tcp://192.168.1.20:7100"],
        ["tcp://*:7100"],
        ["tcp://0.0.0.0:7100"],
        ["tcp://[::]:7100"],
        ["tcp://[fe80::1]:7100"],
        ["tcp://worker-3.lan:7100"],
        ["tcp://eth0:7100"],
        ["tcp://127.0.0.1:5555;10.0.0.2:7100"],
        ["udp://127.0.0.1:7100"],
        ["tcp://localhost.evil.example:7100"],
    ],
)
def test_anything_reachable_from_the_network_needs_keys(endpoints: list[str]) -> None:
    assert not plaintext_allowed(endpoints, insecure=False)
    assert plaintext_allowed(endpoints, insecure=True)
