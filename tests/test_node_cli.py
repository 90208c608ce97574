"""``fless-node`` commands that need no running cluster: keygen, show-config, refusing to start."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def fless_node(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    clean.update(env or {})
    return subprocess.run(
        [str(BIN / "fless-node"), *args], capture_output=True, text=True, env=clean, timeout=60
    )


def test_keygen_writes_private_keys_once(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    done = fless_node("--key-dir", str(keys), "keygen")
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in keys.iterdir())
    assert "gossip.key" in files and "server.key_secret" in files and "client.key_secret" in files
    assert all(p.stat().st_mode & 0o077 == 0 for p in keys.iterdir())
    before = (keys / "gossip.key").read_text()
    again = fless_node("--key-dir", str(keys), "keygen")
    assert again.returncode == 1 and "already holds keys" in again.stderr
    assert (keys / "gossip.key").read_text() == before


def test_a_worker_without_keys_refuses_to_run_off_loopback(tmp_path: Path) -> None:
    done = fless_node(
        "--role",
        "worker",
        "--data-dir",
        str(tmp_path),
        "--rpc-port",
        "0",
        "--gossip-port",
        "0",
        env={"FLESS_CLUSTER_ADVERTISE_HOST": "10.99.0.1", "FLESS_CLUSTER_DISCOVERY": "false"},
    )
    assert done.returncode == 2
    assert "no cluster keys" in done.stderr and "cluster.insecure" in done.stderr


def test_show_config_applies_flags_over_environment(tmp_path: Path) -> None:
    done = fless_node(
        "--port",
        "4321",
        "--seeds",
        "a.lan:7471,b.lan:7471",
        "show-config",
        env={"FLESS_API_PORT": "1234", "FLESS_WORKER_THREADS": "3"},
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["api"]["port"] == 4321
    assert shown["worker"]["threads"] == 3
    assert shown["cluster"]["seeds"] == ["a.lan:7471", "b.lan:7471"]


def test_a_bad_setting_is_one_clear_line(tmp_path: Path) -> None:
    done = fless_node("show-config", env={"FLESS_API_PORT": "many"})
    assert done.returncode == 2
    assert done.stderr.strip() == "fless-node: environment: api.port must be an integer, not 'many'"


def test_reset_admin_key_writes_a_new_private_key_each_time(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = []
    for _ in range(2):
        done = fless_node("--data-dir", str(data), "reset-admin-key")
        assert done.returncode == 0, done.stderr
        assert f"new admin key written to {data / 'admin.key'}" in done.stderr
        assert (data / "admin.key").stat().st_mode & 0o077 == 0
        keys.append((data / "admin.key").read_text().strip())
    assert keys[0] and keys[0] != keys[1]
