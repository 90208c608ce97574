"""uvicorn's server parts, loaded without its package's command line.

An API process needs uvicorn's config, server and HTTP protocol. Its
package's ``__init__`` also imports ``uvicorn.main``, the ``uvicorn``
command, which loads click and the reloaders (and multiprocessing with
them): 1.6 MiB in each API process, measured, for code it never runs.
``load_server_parts`` puts the package in ``sys.modules`` as its spec makes
it, without running its ``__init__``, so ``import uvicorn.server`` finds the
submodules as usual, and sets the names its own submodules take from the
package (``from uvicorn import Config`` in the lifespan). Called in the API
process before its first import of uvicorn (``_api.LateWorker``); where
uvicorn is loaded already it does nothing.
"""

from __future__ import annotations

import importlib.util
import sys


def load_server_parts() -> None:
    """Imports uvicorn's package without its command line, unless it is imported already."""
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")
    if spec is None or spec.submodule_search_locations is None:
        return  # not a package here: the plain import will say what is wrong
    package = importlib.util.module_from_spec(spec)
    sys.modules["uvicorn"] = package
    try:
        from uvicorn._version import __version__
        from uvicorn.config import Config
        from uvicorn.server import Server
    except BaseException:
        del sys.modules["uvicorn"]
        raise
    package.__version__ = __version__  # type: ignore[attr-defined]
    package.Config = Config  # type: ignore[attr-defined]
    package.Server = Server  # type: ignore[attr-defined]
