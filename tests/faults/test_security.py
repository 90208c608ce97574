"""Keys, limits and TLS on real ``fless-node`` processes.

Revoked and rotated keys stop working in every API process at once; a key
over its rate limit gets 429 with ``Retry-After``; oversize bodies get 413 and
change nothing; the API serves HTTPS with the configured certificate; and no
API key or cluster secret reaches the node's log, even at debug level.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.node import BIN, Node, multipart
from fixtures.build import wat

TWO_PROCESSES = {"FLESS_API_WORKERS": "2"}


def _stop_after(node: Node) -> Iterator[Node]:
    try:
        yield node.start()
    finally:
        node.stop()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    """A node with two API processes."""
    yield from _stop_after(Node(tmp_path / "n", env=TWO_PROCESSES))


# -- which API process holds a connection --------------------------------------------


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        found = re.fullmatch(r"socket:\[(\d+)\]", target)
        if found:
            inodes.add(int(found.group(1)))
    return inodes


def serving_process(node: Node, conn: http.client.HTTPConnection) -> int:
    """The API process that accepted ``conn`` (from /proc/net/tcp and the processes' fds)."""
    assert conn.sock is not None
    client_port = conn.sock.getsockname()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == node.port and remote_port == client_port:
            inode = int(fields[9])
    assert inode is not None, "the server side of the connection is not in /proc/net/tcp"
    owners = [pid for pid in node.api_pids() if inode in _socket_inodes(pid)]
    assert len(owners) == 1, owners
    return owners[0]


def _get(conn: http.client.HTTPConnection, path: str, key: str) -> int:
    conn.request("GET", path, headers={"Authorization": f"Bearer {key}"})
    response = conn.getresponse()
    response.read()
    return response.status


def connections_in_every_process(
    node: Node, key: str, most: int = 40
) -> list[http.client.HTTPConnection]:
    """Kept-alive connections that used ``key`` successfully, at least one per API process."""
    pids = set(node.api_pids())
    assert len(pids) == 2, pids
    conns: list[http.client.HTTPConnection] = []
    covered: set[int] = set()
    while covered != pids:
        assert len(conns) < most, f"{most} connections all went to {covered}"
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        assert _get(conn, "/v1/fn", key) == 200
        covered.add(serving_process(node, conn))
        conns.append(conn)
    return conns


# -- revocation and rotation ---------------------------------------------------------


def test_a_revoked_user_is_refused_by_every_api_process_at_once(node: Node) -> None:
    status, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "bob"}})
    assert status == 201, body
    bob = body["data"]["token"]
    conns = connections_in_every_process(node, bob)
    try:
        assert node.request("DELETE", "/v1/admin/subjects/bob")[0] == 204
        # The very next request on each connection, whichever process holds it.
        assert [_get(c, "/v1/fn", bob) for c in conns] == [401] * len(conns)
        assert node.request("GET", "/v1/fn", auth=bob)[0] == 401
        names = [s["name"] for s in node.request("GET", "/v1/admin/subjects")[1]["data"]]
        assert "bob" not in names
        # An admin cannot be revoked (the cluster would lose its admin).
        status, body = node.request("DELETE", "/v1/admin/subjects/admin")
        assert status == 400 and "rotate" in body["errors"]["detail"], body
        assert node.request("DELETE", "/v1/admin/subjects/nobody")[0] == 404
    finally:
        for conn in conns:
            conn.close()


def test_a_rotated_admin_key_is_refused_everywhere_and_the_new_one_saved(node: Node) -> None:
    old = node.key
    conns = connections_in_every_process(node, old)
    try:
        status, body = node.request("POST", "/v1/admin/key", auth=old)
        assert status == 200, body
        new = body["data"]["token"]
        assert body["data"]["name"] == "admin" and new != old
        assert [_get(c, "/v1/fn", old) for c in conns] == [401] * len(conns)
        assert [_get(c, "/v1/fn", new) for c in conns] == [200] * len(conns)
        # The node keeps the new key where it kept the old one, private.
        key_file = node.data_dir / "admin.key"
        assert key_file.read_text().strip() == new
        assert key_file.stat().st_mode & 0o777 == 0o600
    finally:
        for conn in conns:
            conn.close()
    # A user key cannot rotate anything.
    _, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "carol"}})
    assert node.request("POST", "/v1/admin/key", auth=body["data"]["token"])[0] == 403


def _rotate(
    node: Node, key: str, barrier: threading.Barrier, answers: list[tuple[int, Any]]
) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        barrier.wait(timeout=30)
        conn.request("POST", "/v1/admin/key", headers={"Authorization": f"Bearer {key}"})
        response = conn.getresponse()
        answers.append((response.status, json.loads(response.read() or b"null")))
    finally:
        conn.close()


def test_rotations_at_once_in_both_processes_leave_a_key_that_works(node: Node) -> None:
    # Each round, rotations race in the two API processes; the saved file must
    # hold the key the store took last, whichever process wrote it.
    key_file = node.data_dir / "admin.key"
    key = node.key
    for _ in range(12):
        barrier = threading.Barrier(6)
        answers: list[tuple[int, Any]] = []
        threads = [
            threading.Thread(target=_rotate, args=(node, key, barrier, answers)) for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Once one rotation commits, the old key is refused: 200 or 401, no 500.
        assert {status for status, _ in answers} <= {200, 401}, answers
        tokens = {body["data"]["token"] for status, body in answers if status == 200}
        assert tokens, answers
        key = key_file.read_text().strip()
        assert key in tokens
        for conn in connections_in_every_process(node, key):
            conn.close()
    assert not list(node.data_dir.glob("*.tmp")), "a temporary key file was left behind"


def _fless(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("FLESS_")}
    return subprocess.run(
        [str(BIN / "fless"), *argv],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=60,
        check=False,
    )


def test_the_cli_rotates_the_key_it_read_and_revokes_users(node: Node, tmp_path: Path) -> None:
    url = ["--url", node.url]
    copy = tmp_path / "my-admin.key"
    copy.write_text(node.key + "\n")
    copy.chmod(0o600)
    done = _fless(*url, "--key-file", str(copy), "admin", "user", "create", "dave")
    assert done.returncode == 0, done.stderr
    dave = done.stdout.strip()
    assert node.request("GET", "/v1/fn", auth=dave)[0] == 200
    done = _fless(*url, "--key-file", str(copy), "admin", "user", "revoke", "dave")
    assert done.returncode == 0, done.stderr
    assert node.request("GET", "/v1/fn", auth=dave)[0] == 401

    old = copy.read_text().strip()
    done = _fless(*url, "--key-file", str(copy), "admin", "key", "rotate")
    assert done.returncode == 0, done.stderr
    new = copy.read_text().strip()
    assert new != old and new not in done.stdout  # saved, not printed
    assert copy.stat().st_mode & 0o777 == 0o600
    assert node.request("GET", "/v1/fn", auth=old)[0] == 401
    assert node.request("GET", "/v1/fn", auth=new)[0] == 200

    # From the CLI's config file: the config is updated.
    config_home = tmp_path / "config"
    env = {"XDG_CONFIG_HOME": str(config_home)}
    assert _fless("cfg", "set", "key", new, env=env).returncode == 0
    done = _fless(*url, "admin", "key", "rotate", env=env)
    assert done.returncode == 0, done.stderr
    stored = (config_home / "fless" / "config.toml").read_text()
    newer = re.search(r'key = "([^"]+)"', stored)
    assert newer is not None and newer.group(1) not in (new, old)
    assert node.request("GET", "/v1/fn", auth=newer.group(1))[0] == 200
    # From a flag: nowhere to save it, so it is printed.
    done = _fless(*url, "--key", newer.group(1), "admin", "key", "rotate")
    assert done.returncode == 0, done.stderr
    assert node.request("GET", "/v1/fn", auth=done.stdout.strip())[0] == 200


# -- rate limits -----------------------------------------------------------------------


def test_a_key_over_its_rate_limit_gets_429_and_others_go_on(tmp_path: Path) -> None:
    env = {"FLESS_API_WORKERS": "1", "FLESS_API_RATE_LIMIT_PER_S": "1", "FLESS_API_RATE_BURST": "3"}
    for node in _stop_after(Node(tmp_path / "n", env=env)):
        _, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "eve"}})
        eve = body["data"]["token"]
        conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
        answers: list[tuple[int, str | None, Any]] = []
        started = time.monotonic()
        for _ in range(20):
            conn.request("GET", "/v1/fn", headers={"Authorization": f"Bearer {eve}"})
            response = conn.getresponse()
            answers.append(
                (response.status, response.getheader("Retry-After"), json.loads(response.read()))
            )
        elapsed = time.monotonic() - started
        conn.close()
        statuses = [a[0] for a in answers]
        assert statuses[:3] == [200, 200, 200], statuses  # the burst
        refused = [a for a in answers if a[0] == 429]
        assert refused, statuses
        # No more than the burst plus what the rate refilled meanwhile.
        assert statuses.count(200) <= 3 + int(elapsed) + 1, (statuses, elapsed)
        _, retry, detail = refused[0]
        assert retry is not None and int(retry) >= 1
        assert "eve is over the rate limit" in detail["errors"]["detail"]
        # Another key has its own bucket.
        assert node.request("GET", "/v1/fn")[0] == 200
        # An unknown key is refused for what it is, not counted against anyone.
        assert node.request("GET", "/v1/fn", auth="fl_nope")[0] == 401


# -- size limits -----------------------------------------------------------------------


def _chunked(node: Node, method: str, path: str, body: bytes, ctype: str) -> int:
    """A request with no Content-Length (chunked), so the server must count as it reads."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        conn.putrequest(method, path)
        conn.putheader("Authorization", f"Bearer {node.key}")
        conn.putheader("Content-Type", ctype)
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for start in range(0, len(body), 1000):
            chunk = body[start : start + 1000]
            conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        conn.send(b"0\r\n\r\n")
        response = conn.getresponse()
        response.read()
        return response.status
    except (BrokenPipeError, ConnectionResetError):
        return 413  # the server may answer and close before reading it all
    finally:
        conn.close()


def test_oversize_bodies_get_413_and_change_nothing(tmp_path: Path) -> None:
    env = {"FLESS_API_MAX_REQUEST_BYTES": "1024", "FLESS_API_MAX_UPLOAD_BYTES": "8192"}
    for node in _stop_after(Node(tmp_path / "n", env=env)):
        hello = wat("fl_hello")
        assert node.upload("_", "hello", hello)[0] == 201
        before = (
            node.request("GET", "/v1/fn")[1],
            node.request("GET", "/v1/fn/_")[1],
            node.request("GET", "/v1/admin/subjects")[1],
        )

        name = "m" + "x" * 1100
        status, body = node.post_json("/v1/fn", {"module": {"name": name}})
        assert status == 413, body
        assert "limit" in body["errors"]["detail"]
        status, _ = node.post_json("/v1/admin/subjects", {"subject": {"name": "a" * 1100}})
        assert status == 413
        status, _ = node.invoke("_", "hello", {"pad": "p" * 2000})
        assert status == 413
        big = hello + b"\0" * 9000
        assert node.upload("_", "big", big)[0] == 413
        status, _ = node.upload("_", "hello", big, method="PUT", path="/v1/fn/_/hello")
        assert status == 413
        json_body = json.dumps({"module": {"name": "chunked"}}).encode() + b" " * 2000
        assert _chunked(node, "POST", "/v1/fn", json_body, "application/json") == 413
        form, ctype = multipart([("name", None, b"chunky"), ("code", "c.wasm", big)])
        assert _chunked(node, "POST", "/v1/fn/_", form, ctype) == 413

        after = (
            node.request("GET", "/v1/fn")[1],
            node.request("GET", "/v1/fn/_")[1],
            node.request("GET", "/v1/admin/subjects")[1],
        )
        assert after == before
        status, body = node.invoke("_", "hello", {"still": True})
        assert (status, body) == (200, {"data": {"hello": {"still": True}}})


# -- TLS -------------------------------------------------------------------------------


def test_the_api_serves_https_with_its_certificate(tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme", reason="trustme is in the test extras")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    env = {"FLESS_API_TLS_CERTFILE": str(certfile), "FLESS_API_TLS_KEYFILE": str(keyfile)}
    node = Node(tmp_path / "n", env=env)
    node._spawn()
    try:
        context = ssl.create_default_context(cafile=str(cafile))

        def https(path: str, key: str | None = None) -> tuple[int, bytes]:
            conn = http.client.HTTPSConnection("127.0.0.1", node.port, timeout=10, context=context)
            try:
                conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
                response = conn.getresponse()
                return response.status, response.read()
            finally:
                conn.close()

        deadline = time.monotonic() + 30
        while True:
            assert node.proc is not None and node.proc.poll() is None, node.log()
            try:
                status, _ = https("/v1/")
                break
            except OSError:
                assert time.monotonic() < deadline, node.log()
                time.sleep(0.1)
        assert status == 200
        status, raw = https("/v1/fn", node.key)
        assert status == 200 and json.loads(raw)["data"] == [{"name": "_"}]

        # The CLI trusts the private CA by flag or by FLESS_CACERT, and not without it.
        url = ["--url", f"https://127.0.0.1:{node.port}", "--key", node.key]
        done = _fless(*url, "--cacert", str(cafile), "mod", "list")
        assert done.returncode == 0 and json.loads(done.stdout) == [{"name": "_"}], done.stderr
        done = _fless(*url, "mod", "list", env={"FLESS_CACERT": str(cafile)})
        assert done.returncode == 0, done.stderr
        done = _fless(*url, "mod", "list")
        assert done.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in done.stderr, done.stderr

        # Plain HTTP to the TLS port gets no answer.
        with pytest.raises((http.client.HTTPException, OSError)):
            node.request("GET", "/v1/", auth=False, timeout=5)
        # A client that trusts another CA refuses the server.
        other = trustme.CA()
        with socket.create_connection(("127.0.0.1", node.port), timeout=5) as raw_sock:
            strict = ssl.create_default_context()
            other.configure_trust(strict)
            with pytest.raises(ssl.SSLCertVerificationError):
                strict.wrap_socket(raw_sock, server_hostname="127.0.0.1")
        assert "https://" in node.log()
    finally:
        node.stop()


# -- no secret in the log --------------------------------------------------------------


def _secrets_of(data_dir: Path) -> dict[str, str]:
    """The cluster's secrets as they could appear in text: the gossip key, CURVE secret keys."""
    keys = data_dir / "keys"
    found = {"gossip key": (keys / "gossip.key").read_text().strip()}
    for path in keys.glob("*.key_secret"):
        secret = re.search(r'secret-key = "([^"]+)"', path.read_text())
        assert secret is not None
        found[path.name] = secret.group(1)
    return found


def test_no_secret_reaches_the_log_at_debug_level(tmp_path: Path) -> None:
    env = {**TWO_PROCESSES, "FLESS_LOG_LEVEL": "debug"}
    for node in _stop_after(Node(tmp_path / "n", env=env)):
        secrets = {"first admin key": node.key, **_secrets_of(node.data_dir)}
        _, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "frank"}})
        frank = body["data"]["token"]
        secrets["user key"] = frank
        assert node.upload("_", "hello", wat("fl_hello"))[0] == 201
        assert node.invoke("_", "hello", {"a": 1})[0] == 200
        assert node.request("GET", "/v1/fn", auth=frank)[0] == 200
        # Wrong keys, near misses included, are refused without being echoed.
        for wrong in (frank[:-1] + ("A" if frank[-1] != "A" else "B"), "fl_" + "x" * 43):
            status, body = node.request("GET", "/v1/fn", auth=wrong)
            assert status == 401 and wrong not in json.dumps(body)
            secrets[f"wrong key {wrong[:6]}"] = wrong
        status, body = node.request("POST", "/v1/admin/key")
        assert status == 200
        secrets["rotated admin key"] = body["data"]["token"]
        assert node.request("DELETE", "/v1/admin/subjects/frank")[0] == 204
        assert node.request("GET", "/v1/fn", auth=frank)[0] == 401
    log = node.log()
    assert "[DEBUG]" in log  # the level took effect: the test could have seen a leak
    leaked = [what for what, secret in secrets.items() if secret in log]
    assert not leaked, f"in the node's log: {leaked}"
