"""A real ``fless-node`` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fless.client import encode_form

BIN = Path(sys.executable).parent
LOOPBACK_ENV = {
    "FLESS_CLUSTER_DISCOVERY": "false",
    "FLESS_CLUSTER_RPC_HOST": "127.0.0.1",
    "FLESS_CLUSTER_ADVERTISE_HOST": "127.0.0.1",
    "FLESS_CLUSTER_GOSSIP_PORT": "0",
    "FLESS_CLUSTER_RPC_PORT": "0",
}


def free_port() -> int:
    """A TCP port free on loopback now (another process may take it before use)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> float:
    """Polls ``check()`` every ``every`` seconds until it is true; the seconds it took.

    Raises:
        AssertionError: it was still false after ``timeout`` seconds (``what``
            says what was awaited).
    """
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(every)


class Node:
    """One ``fless-node --role all`` with its own data directory and log file."""

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *extra: str,
        env: dict[str, str] | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        # Where fless-node is: this interpreter's venv, or another tree's (bench/ab.py).
        self.bin_dir = bin_dir or BIN
        self.port = port or free_port()
        self.extra = extra
        self.env = env or {}
        self.log_path = data_dir.parent / f"{data_dir.name}-node.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def key(self) -> str:
        return (self.data_dir / "admin.key").read_text().strip()

    def start(self, timeout: float = 30.0) -> Node:
        self._spawn()
        self._wait_http(timeout)
        return self

    def _spawn(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
        # Everything on loopback: no multicast beacon, free ports for RPC and gossip.
        env.update(LOOPBACK_ENV)
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [
                str(self.bin_dir / "fless-node"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(self.data_dir),
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def _wait_http(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"fless-node exited early:\n{self.log()}")
            try:
                status, _ = self.request("GET", "/v1/", auth=False)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"fless-node did not answer within {timeout} s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def api_pids(self) -> list[int]:
        """The API processes: the gunicorn master's children."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def serving_pid(self, client: socket.socket) -> int | None:
        """The API process that holds the server side of ``client``'s connection (from /proc)."""
        client_port = client.getsockname()[1]
        inodes = {}
        for pid in self.api_pids():
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                try:
                    link = os.readlink(fd)
                except OSError:
                    continue  # closed while listed
                if link.startswith("socket:["):
                    inodes[link[8:-1]] = pid
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], fields[9]
                if (
                    int(local.rsplit(":", 1)[1], 16) == self.port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    return inodes.get(inode)
        return None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        auth: bool | str = True,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One request on a new connection; the status and the decoded body."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = dict(headers or {})
            if auth:
                sent["Authorization"] = f"Bearer {self.key if auth is True else auth}"
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        ctype = response.getheader("Content-Type") or ""
        if raw and "json" in ctype:
            return response.status, json.loads(raw)
        return response.status, raw.decode("utf-8", "replace")

    def post_json(self, path: str, payload: Any, auth: bool | str = True) -> tuple[int, Any]:
        return self.request(
            "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}, auth
        )

    def upload(
        self,
        module: str,
        name: str | None,
        code: bytes | None,
        metadata: Any = None,
        method: str = "POST",
        path: str | None = None,
    ) -> tuple[int, Any]:
        fields: list[tuple[str, str | None, bytes]] = []
        if name is not None:
            fields.append(("name", None, name.encode()))
        if code is not None:
            fields.append(("code", "code.wasm", code))
        if metadata is not None:
            fields.append(("metadata", None, json.dumps(metadata).encode()))
        body, ctype = multipart(fields)
        return self.request(method, path or f"/v1/fn/{module}", body, {"Content-Type": ctype})

    def invoke(self, module: str, name: str, args: Any) -> tuple[int, Any]:
        return self.post_json(f"/v1/fn/{module}/{name}", {"args": args})


def multipart(fields: list[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """``(body, content_type)`` of a multipart/form-data upload: (name, filename, data)."""
    content_type, body = encode_form(fields, "fless-test-boundary-7d1f")
    return body, content_type


class WorkerNode(Node):
    """One ``fless-node --role worker``: no HTTP; ready when a core lists it."""

    def __init__(
        self,
        data_dir: Path,
        *,
        seeds: str,
        key_dir: Path,
        memory_mib: int,
        rpc_port: int | None = None,
        gossip_port: int | None = None,
        env: dict[str, str] | None = None,
        bin_dir: Path | None = None,
    ) -> None:
        self.rpc_port = rpc_port or free_port()
        self.gossip_port = gossip_port or free_port()
        super().__init__(
            data_dir,
            None,
            "--role",
            "worker",
            "--seeds",
            seeds,
            "--key-dir",
            str(key_dir),
            "--rpc-port",
            str(self.rpc_port),
            "--gossip-port",
            str(self.gossip_port),
            env={"FLESS_WORKER_MEMORY_MIB": str(memory_mib), **(env or {})},
            bin_dir=bin_dir,
        )

    def start(self, timeout: float = 30.0) -> WorkerNode:
        self._spawn()
        return self

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}-worker-127.0.0.1-{self.rpc_port}"

    def cached(self) -> set[str]:
        """The code hashes this worker's cache holds (read from its LMDB files)."""
        import lmdb

        path = self.data_dir / "cache"
        if not path.exists():
            return set()
        env = lmdb.open(str(path), readonly=True, lock=True, max_dbs=4)
        try:
            meta = env.open_db(b"meta", create=False)
            with env.begin(db=meta) as txn:
                keys = txn.cursor().iternext(values=False)
                return {bytes(k).decode().split(":")[0] for k in keys}
        finally:
            env.close()
