"""Wires the parts of a node for its role; the only module that knows them all.

Role ``all`` (the default) and ``core`` run the REST API under gunicorn: this
process becomes the gunicorn master, which forks the API processes (uvicorn
workers running the Falcon ASGI app) and restarts any that dies. Everything
that holds an LMDB environment or a thread pool is opened in the API
processes, after the fork; the master only prepares the data directory.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication

from fless import __version__
from fless.config import Settings
from fless.core import ROLE_ADMIN, Store

log = logging.getLogger("fless.node")

ADMIN_SUBJECT = "admin"
ADMIN_KEY_FILE = "admin.key"


def _write_secret(path: Path, text: str) -> None:
    """Writes ``text`` to a new file readable by its owner only."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def prepare_data_dir(settings: Settings) -> Path:
    """Creates the data directory and, at first start, the admin key.

    The key is written to ``admin.key`` (mode 0600) and never logged; only its
    hash is stored.

    Returns:
        The path of the admin key file.
    """
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = data / ADMIN_KEY_FILE
    store = Store(data / "store")
    try:
        if not store.has_subject(ADMIN_SUBJECT):
            _write_secret(key_file, store.create_subject(ADMIN_SUBJECT, ROLE_ADMIN))
            log.info("created the admin key in %s", key_file)
        elif not key_file.exists():
            log.warning(
                "%s is missing; the admin key cannot be recovered from its hash. "
                "Run 'fless-node reset-admin-key' to make a new one",
                key_file,
            )
    finally:
        store.close()
    return key_file


def reset_admin_key(settings: Settings) -> Path:
    """Replaces the admin key (the old one stops working) and writes the new one."""
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    key_file = data / ADMIN_KEY_FILE
    store = Store(data / "store")
    try:
        if store.has_subject(ADMIN_SUBJECT):
            key = store.reset_key(ADMIN_SUBJECT)
        else:
            key = store.create_subject(ADMIN_SUBJECT, ROLE_ADMIN)
    finally:
        store.close()
    _write_secret(key_file, key)
    return key_file


class ApiServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured from the settings, serving the Falcon app with uvicorn workers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        """Sets gunicorn's options from the settings (no gunicorn config file is read)."""
        api = self.settings.api
        options: dict[str, Any] = {
            "bind": [f"[{api.host}]:{api.port}" if ":" in api.host else f"{api.host}:{api.port}"],
            "workers": api.workers,
            "worker_class": "uvicorn_worker.UvicornWorker",
            "proc_name": "fless-node",
            # An API process whose event loop stalls this long is replaced.
            "timeout": 60,
            "graceful_timeout": 30,
            "keepalive": 30,
            "loglevel": self.settings.log_level,
            "accesslog": None,
            "errorlog": "-",
            "preload_app": False,
        }
        # gunicorn 25+ opens a control socket in $HOME by default; a node needs
        # none, and two nodes on one machine would fight over it.
        if "control_socket_disable" in self.cfg.settings:
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Builds the app in the API process, after the fork."""
        from fless.api import build_app

        return build_app(self.settings)


def serve(settings: Settings) -> int:
    """Runs the node for its role until it is stopped; the exit status."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.role != "all":
        log.error(
            "role %r needs the cluster transport, which this version does not have yet; "
            "use role 'all' (core and worker on one machine)",
            settings.role,
        )
        return 2
    key_file = prepare_data_dir(settings)
    host = settings.api.host
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    print(
        f"fless-node {__version__}: role {settings.role}, "
        f"API on http://{shown}:{settings.api.port}/v1/, "
        f"data in {settings.data_path}, admin key in {key_file}",
        file=sys.stderr,
        flush=True,
    )
    ApiServer(settings).run()
    return 0
