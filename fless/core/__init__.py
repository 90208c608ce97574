"""The core: the function store, and the flows that create, run and delete functions.

``api`` uses only what this module exports.
"""

from ._errors import (
    AlreadyExists,
    BadRequest,
    CoreError,
    Forbidden,
    NotFound,
    NoWorker,
    TooLarge,
    Unauthorized,
)
from ._local import LocalWorker
from ._platform import FunctionSpec, Platform, parse_args, parse_metadata
from ._records import DEFAULT_MODULE, ROLE_ADMIN, ROLE_USER, FunctionRecord, Subject, check_name
from ._store import Store, key_hash, new_key

__all__ = [
    "DEFAULT_MODULE",
    "ROLE_ADMIN",
    "ROLE_USER",
    "AlreadyExists",
    "BadRequest",
    "CoreError",
    "Forbidden",
    "FunctionRecord",
    "FunctionSpec",
    "LocalWorker",
    "NoWorker",
    "NotFound",
    "Platform",
    "Store",
    "Subject",
    "TooLarge",
    "Unauthorized",
    "check_name",
    "key_hash",
    "new_key",
    "parse_args",
    "parse_metadata",
]
