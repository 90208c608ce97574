"""Settings: defaults < file < environment < flags, and the documented defaults."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from fless.cli.node import _parser, settings_from_args
from fless.config import (
    ConfigError,
    Settings,
    load_settings,
    settings_as_dict,
    with_listen_hosts,
)
from fless.node._api import api_processes

ROOT = Path(__file__).resolve().parent.parent


def test_documented_defaults_equal_the_embedded_ones() -> None:
    with open(ROOT / "conf" / "fless.toml", "rb") as handle:
        documented = tomllib.load(handle)
    assert documented == settings_as_dict(Settings())


def test_no_sources_gives_the_defaults_on_loopback(tmp_path: Path) -> None:
    # The one thing filled in: where to listen, which lan decides (role all: loopback).
    loaded = load_settings(None, environ={})
    assert (loaded.lan, loaded.api.host, loaded.cluster.rpc_host) == ("auto", *2 * ["127.0.0.1"])
    assert loaded == with_listen_hosts(Settings())
    assert Settings().api.host == Settings().cluster.rpc_host == ""


@pytest.mark.parametrize(
    ("environ", "api_host", "rpc_host"),
    [
        ({}, "127.0.0.1", "127.0.0.1"),
        ({"FLESS_ROLE": "core"}, "0.0.0.0", "0.0.0.0"),
        ({"FLESS_ROLE": "worker"}, "0.0.0.0", "0.0.0.0"),
        ({"FLESS_LAN": "on"}, "0.0.0.0", "0.0.0.0"),
        ({"FLESS_LAN": "true"}, "0.0.0.0", "0.0.0.0"),
        ({"FLESS_ROLE": "worker", "FLESS_LAN": "off"}, "127.0.0.1", "127.0.0.1"),
        ({"FLESS_LAN": "on", "FLESS_API_HOST": "10.0.0.5"}, "10.0.0.5", "0.0.0.0"),
        ({"FLESS_CLUSTER_RPC_HOST": "::1"}, "127.0.0.1", "::1"),
    ],
)
def test_lan_decides_the_hosts_left_empty(
    environ: dict[str, str], api_host: str, rpc_host: str
) -> None:
    settings = load_settings(None, environ=environ)
    assert (settings.api.host, settings.cluster.rpc_host) == (api_host, rpc_host)


def test_lan_in_a_file_takes_a_boolean_and_refuses_other_words(tmp_path: Path) -> None:
    config = tmp_path / "fless.toml"
    config.write_text("lan = true\n")
    assert load_settings(config, environ={}).lan == "on"
    config.write_text('lan = "sometimes"\n')
    with pytest.raises(ConfigError, match="lan must be one of auto, on, off, not 'sometimes'"):
        load_settings(config, environ={})


def test_lan_rpc_and_advertise_host_flags(tmp_path: Path) -> None:
    args = _parser().parse_args(["--lan", "--rpc-host", "10.0.0.5", "--advertise-host", "a.lan"])
    settings = settings_from_args(args)
    assert (settings.lan, settings.api.host) == ("on", "0.0.0.0")
    assert (settings.cluster.rpc_host, settings.cluster.advertise_host) == ("10.0.0.5", "a.lan")
    core = settings_from_args(_parser().parse_args(["--role", "core", "--no-lan"]))
    assert (core.lan, core.api.host, core.cluster.rpc_host) == ("off", "127.0.0.1", "127.0.0.1")


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "fless.toml"
    config.write_text(
        'log_level = "debug"\n[api]\nport = 5000\nworkers = 2\n'
        '[functions]\nhttp_allow = ["a.example"]\n'
    )
    environ = {"FLESS_API_PORT": "6000", "FLESS_FUNCTIONS_HTTP_ALLOW": "b.example, c.example"}
    settings = load_settings(config, environ=environ, overrides={"api": {"port": 7000}})
    assert settings.api.port == 7000  # flag beats environment
    assert settings.functions.http_allow == ("b.example", "c.example")  # env beats file
    assert settings.api.workers == 2  # file beats default
    assert settings.log_level == "debug"
    assert settings.api.max_upload_bytes == Settings().api.max_upload_bytes


def test_config_file_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "f.toml"
    config.write_text('data_dir = "/srv/fless"\n')
    assert load_settings(None, environ={"FLESS_CONFIG": str(config)}).data_dir == "/srv/fless"


def test_flags_that_were_not_given_change_nothing() -> None:
    args = _parser().parse_args([])
    assert settings_from_args(args) == load_settings(None)


def test_command_line_flags(tmp_path: Path) -> None:
    args = _parser().parse_args(
        ["--port", "4100", "--data-dir", str(tmp_path), "--role", "all", "--workers", "3"]
    )
    settings = settings_from_args(args)
    assert (settings.api.port, settings.data_path, settings.api.workers) == (4100, tmp_path, 3)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[api]\nprot = 1\n", "unknown setting api.prot"),
        ("colour = 1\n", "unknown setting colour"),
        ('[api]\nport = "x"\n', "api.port must be an integer"),
        ('role = "boss"\n', "role must be one of"),
        ("[worker]\nthreads = 0\n", "worker.threads must be positive"),
        ("[api]\nworkers = -1\n", "api.workers must not be negative"),
        ("[api\n", "not valid TOML"),
    ],
)
def test_bad_files_are_refused_with_the_setting_named(
    tmp_path: Path, text: str, message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_bad_environment_value_names_the_source() -> None:
    with pytest.raises(ConfigError, match=r"environment: api\.port must be an integer"):
        load_settings(None, environ={"FLESS_API_PORT": "four"})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_default_data_dir_is_per_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings().data_path == tmp_path / "fless"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/fless")
    assert Settings().data_path == Path("/var/lib/fless")


@pytest.mark.parametrize(
    ("role", "workers", "cpus", "expected"),
    [
        ("all", 0, 2, 2),  # functions run in the API processes: one per CPU
        ("all", 0, 1, 1),
        ("core", 0, 8, 1),  # forwards only: one keeps a core small
        ("all", 3, 2, 3),  # set explicitly: taken as given
        ("core", 2, 1, 2),
    ],
)
def test_api_processes(role: str, workers: int, cpus: int, expected: int) -> None:
    assert api_processes(role, workers, cpus) == expected


def test_a_workers_name_and_labels_come_from_the_environment_and_are_checked() -> None:
    settings = load_settings(
        environ={"FLESS_WORKER_NAME": "pi-camera-1", "FLESS_WORKER_LABELS": "camera, arm64"}
    )
    assert (settings.worker.name, settings.worker.labels) == ("pi-camera-1", ("camera", "arm64"))
    assert load_settings(environ={}).worker.name == ""  # the node's own name
    for environ, message in [
        ({"FLESS_WORKER_NAME": "-dash-first"}, "worker.name"),
        ({"FLESS_WORKER_NAME": "x" * 64}, "worker.name"),
        ({"FLESS_WORKER_NAME": "with space"}, "worker.name"),
        ({"FLESS_WORKER_LABELS": "ok, not ok"}, "is not a label"),
        ({"FLESS_WORKER_LABELS": ",".join(f"l{n}" for n in range(9))}, "at most 8 labels"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_settings(environ=environ)


def test_settings_without_a_file_do_not_import_the_toml_parser() -> None:
    # The gunicorn master reads the settings and keeps what it imports for
    # the node's life; with no config file it has no use for tomllib.
    code = (
        "import sys; from fless.config import load_settings; load_settings(environ={}); "
        "print('tomllib' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
