"""Names a package exports but loads on first use (PEP 562's module ``__getattr__``).

``fless.core`` and ``fless.worker`` export parts that pull in Wasmtime,
ZeroMQ and kinship; a process that needs only the store (the gunicorn
master) must not carry them.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name from where it lives.

    Args:
        package: the package's ``__name__``.
        where: each name and its module: ``"_platform"`` (one of the
            package's own) or a full name such as ``"fless.exec"``; with
            ``":NAME"`` after it when the module calls it otherwise.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, own = module.partition(":")
        found = importlib.import_module(module if "." in module else f".{module}", package)
        value = getattr(found, own or name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
