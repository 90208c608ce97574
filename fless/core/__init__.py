"""The core: the function store, and the flows that create, run and delete functions.

``api`` uses only what this module exports.
"""

from typing import TYPE_CHECKING

from fless._lazy import lazy_names

from ._bindings import KINDS as BINDING_KINDS
from ._bindings import BindingCheck, Bindings, EventPart
from ._errors import (
    AlreadyExists,
    BadRequest,
    Busy,
    CoreError,
    DefaultModuleKept,
    Forbidden,
    InvalidName,
    NameRefused,
    NameTaken,
    NotFound,
    NoWorker,
    TooLarge,
    Unauthorized,
    WorkerLost,
)
from ._json import MAX_DEPTH as JSON_MAX_DEPTH
from ._json import JsonRefused, check_output
from ._json import load as load_json
from ._metrics import NodeMetrics
from ._metrics import enable as enable_metrics
from ._metrics import render as render_metrics
from ._records import (
    DEFAULT_MODULE,
    ROLE_ADMIN,
    ROLE_USER,
    FunctionRecord,
    Subject,
    check_name,
    is_name,
    parse_count,
)
from ._scheduler import WorkerState, pick_worker
from ._secrets import SecretKeys, SecretMissing, SecretUnreadable
from ._store import Store, key_hash, new_key

# The flows and the worker ends pull in Wasmtime, ZeroMQ and kinship; they are
# loaded on first use so that a process needing only the store (the gunicorn
# master) does not carry them.
_LAZY = {
    "ClusterSource": "_cluster",
    "Candidate": "_dispatch",
    "Dispatcher": "_dispatch",
    "Worker": "_dispatch",
    "WorkerSource": "_dispatch",
    "LocalSource": "_local",
    "FunctionSpec": "_platform",
    "Platform": "_platform",
    "Service": "_platform",
    "new_invocation_id": "_platform",
    "parse_args": "_platform",
    "parse_invoke": "_platform",
    "parse_metadata": "_platform",
    "parse_object": "_platform",
    "RemoteWorker": "_remote",
    # The execution errors the flows raise (exec's own classes), which the
    # API renders: it imports them from here, never from exec.
    "ExecError": "fless.exec",
    "FunctionTimeout": "fless.exec",
    "InvalidModule": "fless.exec",
    # How an execution error is named in records (its wire kind).
    "error_kind": "fless.worker",
}

if TYPE_CHECKING:
    from fless.exec import ExecError, FunctionTimeout, InvalidModule
    from fless.worker import error_kind

    from ._cluster import ClusterSource
    from ._dispatch import Candidate, Dispatcher, Worker, WorkerSource
    from ._local import LocalSource
    from ._platform import (
        FunctionSpec,
        Platform,
        Service,
        new_invocation_id,
        parse_args,
        parse_invoke,
        parse_metadata,
        parse_object,
    )
    from ._remote import RemoteWorker


__getattr__ = lazy_names(__name__, _LAZY)

__all__ = [
    "BINDING_KINDS",
    "DEFAULT_MODULE",
    "JSON_MAX_DEPTH",
    "ROLE_ADMIN",
    "ROLE_USER",
    "AlreadyExists",
    "BadRequest",
    "BindingCheck",
    "Bindings",
    "Busy",
    "Candidate",
    "ClusterSource",
    "CoreError",
    "DefaultModuleKept",
    "Dispatcher",
    "EventPart",
    "ExecError",
    "Forbidden",
    "FunctionRecord",
    "FunctionSpec",
    "FunctionTimeout",
    "InvalidModule",
    "InvalidName",
    "JsonRefused",
    "LocalSource",
    "NameRefused",
    "NameTaken",
    "NoWorker",
    "NodeMetrics",
    "NotFound",
    "Platform",
    "RemoteWorker",
    "SecretKeys",
    "SecretMissing",
    "SecretUnreadable",
    "Service",
    "Store",
    "Subject",
    "TooLarge",
    "Unauthorized",
    "Worker",
    "WorkerLost",
    "WorkerSource",
    "WorkerState",
    "check_name",
    "check_output",
    "enable_metrics",
    "error_kind",
    "is_name",
    "key_hash",
    "load_json",
    "new_invocation_id",
    "new_key",
    "parse_args",
    "parse_count",
    "parse_invoke",
    "parse_metadata",
    "parse_object",
    "pick_worker",
    "render_metrics",
]
