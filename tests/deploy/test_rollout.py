"""A real rollout: site.yml and upgrade.yml over SSH onto three "boards".

Three network namespaces on a bridge (``cluster.netns``), each running its
own sshd; ansible-playbook on this machine installs a core and two workers
through them, each under its own prefix (the "boards" share one filesystem),
from a wheelhouse built here. No systemd runs here, so the role starts each
node with start-stop-daemon from the rendered unit's ExecStart= line inside
that board's namespace. The test checks the three form a cluster that
serves (over HTTPS: the core gets a certificate through the role's TLS
variables), then rolls the workers to a new version with upgrade.yml while a
client keeps calling, then the core. Root only; as root a missing tool fails.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster.netns import BEACON_GROUP, Lab, available
from deploy.ansible_run import REPO, ansible_env, run, tool
from e2e.node import multipart, wait_for
from fixtures.build import wat

pytestmark = [pytest.mark.rollout, pytest.mark.timeout(900)]

HOSTS = {"core": 1, "worker1": 2, "worker2": 3}
WORKERS = ("worker1", "worker2")
API_PORT = 4000
GOSSIP_PORT = 7471
UPGRADED = "0.1.0+rollout"

SSHD_CONFIG = """\
ListenAddress {address}
Port 22
HostKey {root}/ssh/host_key
PidFile {root}/ssh/sshd-{name}.pid
AuthorizedKeysFile {root}/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
"""


@dataclass
class Boards:
    lab: Lab
    root: Path
    inventory: Path
    env: dict[str, str]

    def state_dir(self, name: str) -> Path:
        return self.root / name / "var" / "lib" / "fless"

    @property
    def admin_key(self) -> str:
        return (self.state_dir("core") / "admin.key").read_text().strip()

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        # The core serves HTTPS with a certificate from the test's own CA.
        context = ssl.create_default_context(cafile=str(self.root / "tls" / "ca.pem"))
        conn = http.client.HTTPSConnection(
            Lab.address(HOSTS["core"]), API_PORT, timeout=15, context=context
        )
        try:
            conn.request(
                method,
                path,
                body=body,
                headers={"Authorization": f"Bearer {self.admin_key}", **(headers or {})},
            )
            response = conn.getresponse()
            raw = response.read()
        finally:
            conn.close()
        return response.status, json.loads(raw) if raw else None

    def members(self) -> dict[str, dict[str, Any]]:
        """The core's view, by gossip address."""
        status, body = self.request("GET", "/v1/nodes")
        assert status == 200, body
        return {m["address"]: m for m in body["data"]}

    def invoke(self, args: Any) -> tuple[int, Any]:
        return self.request(
            "POST",
            "/v1/fn/_/hello",
            json.dumps({"args": args}).encode(),
            {"Content-Type": "application/json"},
        )

    def playbook(self, *args: str) -> str:
        out = run([tool("ansible-playbook"), "-i", str(self.inventory), *args], self.env, 600)
        print(out[out.find("TASK TIMES") :])
        return out

    def logs(self) -> str:
        parts = []
        for name in HOSTS:
            log = self.state_dir(name) / "fless-node.log"
            if log.exists():
                parts.append(f"--- {name}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def address(name: str) -> str:
    return f"{Lab.address(HOSTS[name])}:{GOSSIP_PORT}"


def _require_tools() -> None:
    reason = available()
    for path, package in (
        ("/usr/sbin/sshd", "openssh-server"),
        ("/usr/bin/ssh", "openssh-client"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
    ):
        if reason is None and not Path(path).exists():
            reason = f"{path} not found: apt-get install {package}"
    if reason is None and shutil.which("start-stop-daemon") is None:
        reason = "start-stop-daemon not found: apt-get install dpkg"
    if reason is not None:
        if os.geteuid() == 0:
            pytest.fail(f"{reason} (make test installs it when run as root)")
        pytest.skip(reason)


def _inventory(root: Path) -> dict[str, Any]:
    hosts: dict[str, dict[str, Any]] = {}
    for name, i in HOSTS.items():
        base = root / name
        hosts[name] = {
            "ansible_host": Lab.address(i),
            "fless_node_prefix": str(base / "opt" / "fless"),
            "fless_node_config_dir": str(base / "etc" / "fless"),
            "fless_node_state_dir": str(base / "var" / "lib" / "fless"),
            "fless_node_unit_path": str(base / "etc" / "fless-node.service"),
            "fless_node_advertise_host": Lab.address(i),
            "fless_node_beacon_group": BEACON_GROUP,
            "fless_node_memory_mib": 512,
        }
    hosts["core"]["fless_node_tls_certfile"] = str(root / "tls" / "cert.pem")
    hosts["core"]["fless_node_tls_keyfile"] = str(root / "tls" / "key.pem")
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(root / "ssh" / "client_key"),
                # One SSH connection per board for the whole run; gone with its sshd.
                "ansible_ssh_common_args": (
                    f"-o ControlMaster=auto -o ControlPersist=20s -o ControlPath={root}/cp-%C "
                    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
                ),
                "ansible_python_interpreter": "/usr/bin/python3",
                # The test's boards: no apt (no registry in a namespace), no
                # account (one /etc/passwd for all three), no systemd.
                "fless_node_user": "root",
                "fless_node_group": "root",
                "fless_node_create_user": False,
                "fless_node_install_packages": False,
                "fless_node_service_manager": "none",
                "fless_node_controller_keys": str(root / "controller-keys"),
            },
            "children": {
                "fless_core": {"hosts": {"core": hosts["core"]}},
                "fless_workers": {"hosts": {w: hosts[w] for w in WORKERS}},
            },
        }
    }


def _make_tls(root: Path) -> None:
    """A CA and the core's certificate for its address, as the operator would have them."""
    trustme = pytest.importorskip("trustme", reason="trustme is in the test extras")
    tls = root / "tls"
    tls.mkdir()
    ca = trustme.CA()
    cert = ca.issue_cert(Lab.address(HOSTS["core"]))
    cert.private_key_and_cert_chain_pem.write_to_path(str(tls / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tls / "key.pem"))
    ca.cert_pem.write_to_path(str(tls / "ca.pem"))


def _start_sshd(lab: Lab, root: Path) -> None:
    ssh = root / "ssh"
    ssh.mkdir()
    for key in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / key)], check=True
        )
    shutil.copy(ssh / "client_key.pub", ssh / "authorized_keys")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
    for name, i in HOSTS.items():
        config = ssh / f"sshd-{name}.conf"
        config.write_text(SSHD_CONFIG.format(address=Lab.address(i), root=root, name=name))
        lab.spawn(
            i, ["/usr/sbin/sshd", "-D", "-e", "-f", str(config)], dict(os.environ), f"sshd-{name}"
        )

    def listening(i: int) -> bool:
        try:
            socket.create_connection((Lab.address(i), 22), timeout=1).close()
        except OSError:
            return False
        return True

    for i in HOSTS.values():
        wait_for(lambda i=i: listening(i), 15, f"sshd on {Lab.address(i)}")


@pytest.fixture(scope="module")
def boards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Boards]:
    _require_tools()
    root = tmp_path_factory.mktemp("rollout")
    lab = Lab(len(HOSTS), root)
    try:
        lab.open()
        _start_sshd(lab, root)
        _make_tls(root)
        inventory = root / "inventory.yml"
        inventory.write_text(yaml.safe_dump(_inventory(root)))
        yield Boards(lab, root, inventory, ansible_env(root))
    finally:
        lab.close()


def _upgraded_source(root: Path) -> Path:
    """A copy of the source whose version says it is the upgrade."""
    source = root / "source-upgraded"
    shutil.copytree(REPO / "fless", source / "fless", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("setup.cfg", "pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    init = source / "fless" / "__init__.py"
    text = init.read_text()
    assert '__version__ = "0.1.0"' in text
    init.write_text(text.replace('__version__ = "0.1.0"', f'__version__ = "{UPGRADED}"'))
    return source


def test_site_yml_installs_a_cluster_that_serves(boards: Boards) -> None:
    started = time.monotonic()
    boards.playbook("site.yml")
    print(f"site.yml took {time.monotonic() - started:.1f} s")

    for name in HOSTS:
        keys = boards.root / name / "etc" / "fless" / "keys"
        for key in ("server.key_secret", "client.key_secret", "gossip.key"):
            assert (keys / key).stat().st_mode & 0o777 == 0o600
        assert (keys / "gossip.key").read_bytes() == (
            boards.root / "controller-keys" / "gossip.key"
        ).read_bytes()
        unit = (boards.root / name / "etc" / "fless-node.service").read_text()
        assert f"ExecStart={boards.root / name}/opt/fless/venv/bin/fless-node --config" in unit
    toml = (boards.root / "worker1" / "etc" / "fless" / "fless.toml").read_text()
    assert 'role = "worker"' in toml
    assert 'lan = "on"' in toml  # a deployed node serves the LAN
    assert f'seeds = ["{address("core")}"]' in toml
    assert 'tls_certfile = ""' in toml
    core_toml = (boards.root / "core" / "etc" / "fless" / "fless.toml").read_text()
    assert f'tls_certfile = "{boards.root}/core/etc/fless/tls/cert.pem"' in core_toml
    tls_key = boards.root / "core" / "etc" / "fless" / "tls" / "key.pem"
    assert tls_key.stat().st_mode & 0o777 == 0o600

    wait_for(lambda: (boards.state_dir("core") / "admin.key").exists(), 30, "the core's admin key")

    def cluster_formed() -> bool:
        try:
            members = boards.members()
        except OSError:  # ssl.SSLError too: the core is still starting
            return False
        return all(members.get(address(w), {}).get("state") == "alive" for w in WORKERS)

    try:
        wait_for(cluster_formed, 60, "both workers alive in the core's view", every=0.5)
    except AssertionError:
        raise AssertionError(boards.logs()) from None

    body, ctype = multipart([("name", None, b"hello"), ("code", "code.wasm", wat("fl_hello"))])
    status, answer = boards.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})
    assert status == 201, answer
    assert answer["data"]["workers"] == 2
    assert boards.invoke({"n": 1}) == (200, {"data": {"hello": {"n": 1}}})

    # A reload (the service script's, as systemctl reload): the core starts new
    # API processes, a worker logs that it needs a restart; both keep serving.
    for name in ("core", "worker1"):
        service = boards.root / name / "opt" / "fless" / "bin" / "fless-node-service"
        run(
            [
                tool("ansible"),
                "-i",
                str(boards.inventory),
                name,
                "-m",
                "command",
                "-a",
                f"{service} reload",
            ],
            boards.env,
            120,
        )
    worker_log = boards.state_dir("worker1") / "fless-node.log"
    wait_for(lambda: "SIGHUP ignored" in worker_log.read_text(), 10, "worker1 logs the SIGHUP")
    assert boards.invoke({"n": 2}) == (200, {"data": {"hello": {"n": 2}}})
    assert all(boards.members()[address(w)]["state"] == "alive" for w in WORKERS)

    # Idempotent: a second run changes nothing and restarts nothing.
    out = boards.playbook("site.yml")
    recap = [line for line in out.splitlines() if " : ok=" in line]
    assert recap and all("changed=0" in line for line in recap), out[-4000:]


def test_upgrade_yml_rolls_the_workers_while_the_cluster_serves(boards: Boards) -> None:
    source = _upgraded_source(boards.root)
    calls: list[tuple[int, Any]] = []
    workers_done = threading.Event()

    def workers_upgraded() -> bool:
        members = boards.members()
        return all(members.get(address(w), {}).get("version") == UPGRADED for w in WORKERS)

    def keep_calling() -> None:
        # Until both workers run the new version: the cores come after them, and
        # with one core the API is away while it restarts.
        n = 0
        while not workers_upgraded():
            n += 1
            try:
                calls.append(boards.invoke({"n": n}))
            except OSError as exc:
                calls.append((0, str(exc)))
            time.sleep(0.05)
        workers_done.set()

    caller = threading.Thread(target=keep_calling, daemon=True)
    caller.start()
    started = time.monotonic()
    boards.playbook("upgrade.yml", "-e", f"fless_node_source_dir={source}")
    print(f"upgrade.yml took {time.monotonic() - started:.1f} s; {len(calls)} calls meanwhile")
    caller.join(timeout=30)
    assert workers_done.is_set()
    failed = [c for c in calls if c[0] != 200]
    assert len(calls) > 20 and not failed, failed[:5]

    def upgraded() -> bool:
        try:
            members = boards.members()
        except OSError:
            return False
        return all(
            members.get(address(n), {}).get("version") == UPGRADED
            and members[address(n)]["state"] == "alive"
            for n in HOSTS
        )

    wait_for(upgraded, 60, "the core and both workers alive on the new version", every=0.5)
    assert boards.invoke({"n": 0}) == (200, {"data": {"hello": {"n": 0}}})
