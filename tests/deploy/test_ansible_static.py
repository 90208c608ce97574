"""The Ansible side without hosts: lint, syntax, and the unit systemd would run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from deploy.ansible_run import REPO, ROLE, ansible_env, run, tool

from fless.config import load_settings
from fless.node._stop import STOP_MARGIN_S

PLAYBOOKS = ("site.yml", "upgrade.yml")


def test_ansible_lint_production_profile_is_clean(tmp_path: Path) -> None:
    out = run([tool("ansible-lint"), "--offline", "--profile", "production"], ansible_env(tmp_path))
    assert "Profile 'production' was required, and it passed" in out, out


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_syntax(tmp_path: Path, playbook: str) -> None:
    out = run(
        [tool("ansible-playbook"), "-i", "inventory.example.yml", "--syntax-check", playbook],
        ansible_env(tmp_path),
    )
    assert f"playbook: {playbook}" in out


def render_unit(tmp_path: Path, **overrides: str) -> str:
    """The role's unit template rendered by Ansible with its defaults (and ``overrides``)."""
    return render(tmp_path, "fless-node.service", **overrides)


def render(tmp_path: Path, name: str, **overrides: str) -> str:
    """The role's template ``name``.j2 rendered by Ansible with its defaults (and ``overrides``)."""
    dest = tmp_path / name
    extra = [arg for key, value in overrides.items() for arg in ("-e", f"{key}={value}")]
    run(
        [
            tool("ansible"),
            "localhost",
            "-c",
            "local",
            "-i",
            "localhost,",
            "-e",
            f"ansible_python_interpreter={tool('python')}",
            "-e",
            f"@{ROLE / 'defaults' / 'main.yml'}",
            *extra,
            "-m",
            "ansible.builtin.template",
            "-a",
            f"src={ROLE / 'templates' / f'{name}.j2'} dest={dest}",
        ],
        ansible_env(tmp_path),
    )
    return dest.read_text()


@pytest.mark.parametrize("role", ["core", "worker", "all"])
def test_a_deployed_node_serves_the_lan_whatever_its_role(tmp_path: Path, role: str) -> None:
    # A node run by hand with role all keeps to loopback; the rollout's nodes
    # are a cluster across boards, and say so in their fless.toml.
    render(tmp_path, "fless.toml", fless_node_role=role, inventory_hostname="board")
    settings = load_settings(tmp_path / "fless.toml", environ={})
    assert (settings.role, settings.lan) == (role, "on")
    assert (settings.api.host, settings.cluster.rpc_host) == ("0.0.0.0", "0.0.0.0")
    assert settings.cluster.discovery
    # systemd's stop timeout leaves the drain its time, and the leave its margin.
    unit = render_unit(tmp_path)
    stop_s = int(unit.split("TimeoutStopSec=")[1].split()[0])
    assert stop_s >= settings.drain_timeout_s + STOP_MARGIN_S


def test_conf_unit_is_the_template_with_the_role_defaults(tmp_path: Path) -> None:
    assert render_unit(tmp_path) == (REPO / "conf" / "fless-node.service").read_text(), (
        "conf/fless-node.service is out of date: render the role's template with its defaults"
    )


def test_systemd_analyze_verify_finds_nothing(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found: apt-get install systemd (make test does, as root)")
    # verify checks that ExecStart= exists: give it a prefix holding a real fless-node.
    prefix = tmp_path / "opt"
    (prefix / "venv" / "bin").mkdir(parents=True)
    (prefix / "venv" / "bin" / "fless-node").symlink_to(Path(tool("fless-node")))
    unit = tmp_path / "unit"
    unit.mkdir()
    (unit / "fless-node.service").write_text(render_unit(tmp_path, fless_node_prefix=str(prefix)))
    done = subprocess.run(
        [analyze, "verify", str(unit / "fless-node.service")],
        capture_output=True,
        text=True,
        check=False,
    )
    # It exits 0 on warnings: the output must be empty too.
    assert done.returncode == 0 and not (done.stdout + done.stderr).strip(), done.stderr
    assert "ExecStart=" + str(prefix) in (unit / "fless-node.service").read_text()


def test_conf_unit_runs_the_node_hardened_and_stops_it_gracefully() -> None:
    unit = (REPO / "conf" / "fless-node.service").read_text().splitlines()
    for line in (
        "User=fless",
        "StateDirectory=fless",
        "Restart=on-failure",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=",
        "KillMode=mixed",
        "ExecStart=/opt/fless/venv/bin/fless-node --config /etc/fless/fless.toml",
    ):
        assert line in unit
    # Wasmtime writes machine code and then runs it.
    assert not any(line.startswith("MemoryDenyWriteExecute") for line in unit)
    stop = next(int(line.split("=")[1]) for line in unit if line.startswith("TimeoutStopSec="))
    from fless.worker import DRAIN_TIMEOUT_S

    assert stop > DRAIN_TIMEOUT_S  # a draining worker is not killed mid-call
