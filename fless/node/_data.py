"""The data directory of a node: created at first start, with the admin key and cluster keys."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from fless.config import Settings
from fless.core import ROLE_ADMIN, Store

log = logging.getLogger("fless.node")

ADMIN_SUBJECT = "admin"
ADMIN_KEY_FILE = "admin.key"


def _write_secret(path: Path, text: str) -> None:
    """Writes ``text`` to a new file readable by its owner only."""
    # A name of this writer's own: two writers sharing one temporary file
    # could rename a half-written or mixed key into place.
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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


def write_admin_key(settings: Settings, key: str) -> Path:
    """Keeps a new admin key in the node's ``admin.key`` (mode 0600, replaced atomically)."""
    key_file = settings.data_path / ADMIN_KEY_FILE
    _write_secret(key_file, key)
    return key_file


def reset_admin_key(settings: Settings) -> Path:
    """Replaces the admin key (the old one stops working) and writes the new one."""
    data = settings.data_path
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store(data / "store")
    try:
        if store.has_subject(ADMIN_SUBJECT):
            # Saved inside the transaction, as a running node's rotation is.
            store.reset_key(ADMIN_SUBJECT, keep=lambda key: write_admin_key(settings, key))
        else:
            write_admin_key(settings, store.create_subject(ADMIN_SUBJECT, ROLE_ADMIN))
    finally:
        store.close()
    return settings.data_path / ADMIN_KEY_FILE
