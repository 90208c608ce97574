"""Wires the parts of a node for its role; the only package that knows them all.

Role ``all`` and ``core`` run the REST API under gunicorn: the node's process
becomes the gunicorn master, which forks the API processes (uvicorn workers
running the Falcon ASGI app) and restarts any that dies. Everything that
holds an LMDB environment, a socket or a thread pool is opened in the API
processes, after the fork. Role ``worker`` runs one asyncio loop with the
RPC server, the executor and the gossip member, and no HTTP.
"""

from typing import TYPE_CHECKING

from fless._lazy import lazy_names

from ._keys import has_keys, keygen
from ._serve import serve

# The store: loaded on first use, so that the gunicorn master never carries
# it (``_serve._in_child``).
_LAZY = {"prepare_data_dir": "_data", "reset_admin_key": "_data"}

if TYPE_CHECKING:
    from ._data import prepare_data_dir, reset_admin_key

__getattr__ = lazy_names(__name__, _LAZY)

__all__ = ["has_keys", "keygen", "prepare_data_dir", "reset_admin_key", "serve"]
