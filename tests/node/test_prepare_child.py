"""The data directory is prepared in a child of the master (node/_serve._in_child): real forks."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from fless.config import Settings, load_settings
from fless.node._keys import KeyError_
from fless.node._serve import _in_child


def _settings(tmp_path: Path) -> Settings:
    return load_settings(environ={"FLESS_DATA_DIR": str(tmp_path / "data")})


def test_the_childs_path_comes_back(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    made = tmp_path / "data" / "admin.key"

    def prepare(_: Settings) -> Path:
        return made

    assert _in_child(prepare, settings) == (0, made)


def test_a_child_killed_by_a_signal_is_named_and_fails_the_start(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    def prepare(_: Settings) -> Path:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("not reached")

    status, _ = _in_child(prepare, _settings(tmp_path))
    assert status == 1
    err = capfd.readouterr().err
    assert f"preparing {tmp_path / 'data'} was stopped by SIGKILL" in err


def test_refused_keys_are_one_line_and_status_2(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    def prepare(_: Settings) -> Path:
        raise KeyError_("the cluster keys in /k are not readable")

    status, _ = _in_child(prepare, _settings(tmp_path))
    assert status == 2
    assert capfd.readouterr().err.strip() == "fless-node: the cluster keys in /k are not readable"


def test_a_child_that_returns_no_path_fails_the_start(tmp_path: Path) -> None:
    def prepare(_: Settings) -> Path:
        os._exit(0)  # as if it died quietly before writing its answer

    status, _ = _in_child(prepare, _settings(tmp_path))
    assert status == 1
