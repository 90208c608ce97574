"""The core: the function store, and the flows that create, run and delete functions.

``api`` uses only what this module exports.
"""

from ._cluster import ClusterSource
from ._dispatch import Candidate, Dispatcher, Worker, WorkerSource
from ._errors import (
    AlreadyExists,
    BadRequest,
    CoreError,
    Forbidden,
    NotFound,
    NoWorker,
    TooLarge,
    Unauthorized,
    WorkerLost,
)
from ._local import LocalSource, LocalWorker
from ._platform import FunctionSpec, Platform, Service, parse_args, parse_metadata, parse_object
from ._records import DEFAULT_MODULE, ROLE_ADMIN, ROLE_USER, FunctionRecord, Subject, check_name
from ._remote import RemoteWorker, WorkerService
from ._scheduler import WorkerState, pick_worker
from ._store import Store, key_hash, new_key

__all__ = [
    "DEFAULT_MODULE",
    "ROLE_ADMIN",
    "ROLE_USER",
    "AlreadyExists",
    "BadRequest",
    "Candidate",
    "ClusterSource",
    "CoreError",
    "Dispatcher",
    "Forbidden",
    "FunctionRecord",
    "FunctionSpec",
    "LocalSource",
    "LocalWorker",
    "NoWorker",
    "NotFound",
    "Platform",
    "RemoteWorker",
    "Service",
    "Store",
    "Subject",
    "TooLarge",
    "Unauthorized",
    "Worker",
    "WorkerLost",
    "WorkerService",
    "WorkerSource",
    "WorkerState",
    "check_name",
    "key_hash",
    "new_key",
    "parse_args",
    "parse_metadata",
    "parse_object",
    "pick_worker",
]
