"""What each process of a node loads: the gunicorn master supervises, a core never runs Wasm.

A library a process has imported stays in its memory for the process's
life, and what the master holds is counted again in every API process it
forks. These tests read the shared objects each real ``fless-node``
process has mapped (``/proc/PID/maps``): the master of a core and of a
role ``all`` node maps neither the store's (LMDB, CBOR) nor ZeroMQ's, and a
core's API process loads Wasmtime only when an upload must be validated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node, wait_for
from fixtures.build import wat

STORE_AND_RPC = ("lmdb/cpython", "cbor2/_cbor2", "libzmq", "_zmq.cpython")
WASMTIME = "_libwasmtime.so"
# (module (memory (export "memory") 1) (func (export "__invoke") (param i32) (result i32))):
# a FunLess-ABI module in shape, whose function returns no value.
MISTYPED = bytes.fromhex(
    "0061736d0100000001060160017f017f030201000503010001071502066d656d6f7279"
    "0200085f5f696e766f6b6500000a040102000b"
)


def mapped(pid: int) -> set[str]:
    """The files process ``pid`` has mapped."""
    found = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) == 6 and parts[5].startswith("/"):
            found.add(parts[5])
    return found


def holds(pid: int, fragment: str) -> bool:
    return any(fragment in path for path in mapped(pid))


def run_script(script: str, *args: str) -> Any:
    """What a Python ``script`` run as a process of its own printed last, as JSON.

    It runs with no FLESS_ variable of the test's environment.
    """
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if not k.startswith("FLESS_")},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def core(tmp_path: Path) -> Iterator[Node]:
    running = Node(tmp_path / "data", None, "--role", "core").start()
    yield running
    running.stop()


def test_a_cores_master_maps_no_store_and_no_zeromq(core: Node) -> None:
    assert core.proc is not None
    master = core.proc.pid
    assert not [f for f in STORE_AND_RPC if holds(master, f)], sorted(mapped(master))
    assert not holds(master, WASMTIME)
    # The child that prepared the data directory did its work: the admin key
    # works, and the cluster keys were made.
    assert core.request("GET", "/v1/fn")[0] == 200
    assert (core.data_dir / "keys" / "gossip.key").exists()
    # The API process, which needs them, has them.
    (api,) = core.api_pids()
    assert all(holds(api, f) for f in ("lmdb/cpython", "cbor2/_cbor2", "libzmq"))
    # uvicorn's command line is not loaded: its reloaders bring multiprocessing
    # and its C part (fless.node._uvicorn), 1.6 MiB of each API process with click.
    assert not holds(api, "_multiprocessing.cpython"), sorted(mapped(api))


def test_a_core_loads_wasmtime_at_its_first_upload_and_validates_it(core: Node) -> None:
    (api,) = core.api_pids()
    assert not holds(api, WASMTIME), "an idle core's API process carries no Wasmtime"
    # Well formed, but its one function returns no value: only the validator sees it.
    status, body = core.upload("_", "broken", MISTYPED)
    assert status == 400, body
    assert "not a valid WebAssembly module: type mismatch" in body["errors"]["detail"]
    assert holds(api, WASMTIME)
    status, body = core.upload("_", "hello", wat("fl_hello"))
    assert status == 201, body
    assert core.request("GET", "/v1/fn/_/hello")[0] == 200


def heartbeats(pid: int) -> set[tuple[int, int]]:
    """(device, inode) of each gunicorn heartbeat file (``wgunicorn-``) ``pid`` holds open."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if "wgunicorn-" in os.readlink(fd):
                held = fd.stat()
                found.add((held.st_dev, held.st_ino))
        except FileNotFoundError:
            continue  # closed while listed
    return found


def test_a_role_all_master_maps_none_of_them(tmp_path: Path) -> None:
    node = Node(tmp_path / "data", None, "--workers", "2").start()
    try:
        assert node.proc is not None
        master = node.proc.pid
        assert not [f for f in (*STORE_AND_RPC, WASMTIME, "uvloop/loop") if holds(master, f)]
        # The master made each API process's worker object before the fork and
        # watches its heartbeat file; uvicorn's worker, made after the fork,
        # must beat in that same file, or the master would kill a sound process.
        apis = node.api_pids()
        assert len(apis) == 2
        # Both have booted once both run uvicorn's loop (one may still be starting).
        wait_for(lambda: all(holds(api, "uvloop/loop") for api in apis), 30, "both API processes")
        watched = heartbeats(master)
        assert len(watched) == 2
        for api in apis:
            assert len(heartbeats(api)) == 1 and heartbeats(api) <= watched
        status, body = node.upload("_", "hello", wat("fl_hello"))
        assert status == 201, body
        assert node.invoke("_", "hello", {"name": "master"})[0] == 200
    finally:
        node.stop()


def test_a_data_directory_that_cannot_be_made_is_one_clear_line(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    node = Node(blocked, None, "--role", "core")
    node._spawn()
    assert node.proc is not None
    assert node.proc.wait(timeout=30) == 2
    lines = [line for line in node.log().splitlines() if line.strip()]
    assert lines == [f"fless-node: cannot prepare {blocked}: [Errno 17] File exists: '{blocked}'"]


# An API process of a core as fless-node makes it: the platform and the app,
# from the settings, then what it has imported.
_API_PROCESS = """
import json, sys
from fless.api import create_app
from fless.config import load_settings
from fless.node._platform import open_platform
settings = load_settings(environ={
    "FLESS_ROLE": "core", "FLESS_DATA_DIR": sys.argv[1], "FLESS_LAN": "off",
    "FLESS_CLUSTER_DISCOVERY": "false", "FLESS_CLUSTER_GOSSIP_PORT": "0",
})
create_app(open_platform(settings, "footprint"), settings.api.max_request_bytes)
import mimetypes
system_mime_table = mimetypes._db is not None
late = ("wasmtime", "paho", "croniter", "dateutil")
before = sorted(m for m in sys.modules if m.split(".")[0] in late)
from fless.events._specs import parse_event
parse_event({"type": "cron", "params": {"schedule": "*/5 * * * *"}})
after = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in ("croniter", "paho"))
print(json.dumps({
    "before": before, "after": sorted(set(after)), "system_mime_table": system_mime_table,
    "guessed": mimetypes.guess_type("x.json")[0],
}))
"""


def test_a_cores_api_process_imports_no_runtime_no_mqtt_no_cron_until_needed(
    tmp_path: Path,
) -> None:
    loaded = run_script(_API_PROCESS, str(tmp_path / "data"))
    assert loaded["before"] == []
    # A cron binding's check loads croniter, and still nothing of paho.
    assert loaded["after"] == ["croniter"]
    # Falcon's static-route table is Python's own: /etc/mime.types, 0.45 MiB
    # of every API process, is read only if something asks mimetypes later.
    assert loaded["system_mime_table"] is False
    assert loaded["guessed"] == "application/json"


# An API process's app as gunicorn's worker loads it (``ApiServer.load``),
# then one full pass of the collector.
_LOADED_APP = """
import gc, json, sys
from fless.config import load_settings
from fless.node._api import ApiServer
settings = load_settings(environ={
    "FLESS_ROLE": "all", "FLESS_DATA_DIR": sys.argv[1], "FLESS_LAN": "off",
    "FLESS_CLUSTER_DISCOVERY": "false", "FLESS_CLUSTER_GOSSIP_PORT": "0",
})
ApiServer(settings, 1, "footprint").load()
walked = []
def note(phase, info):
    if phase == "start":
        walked.append(len(gc.get_objects()))
gc.callbacks.append(note)
gc.collect()
print(json.dumps({"frozen": gc.get_freeze_count(), "walked": walked[0]}))
"""


def test_an_api_process_leaves_what_its_start_made_out_of_the_collectors_passes(
    tmp_path: Path,
) -> None:
    # A full pass over a built app's objects took 15-27 ms, which held every
    # request of the process and stopped a function's run on the loop at its
    # budget; frozen, they are not walked again (fless/_heap.py).
    counts = run_script(_LOADED_APP, str(tmp_path / "data"))
    assert counts["frozen"] > 20_000
    assert counts["walked"] < counts["frozen"] / 10


# The server settings an API process loads, as its uvicorn worker makes them,
# after uvicorn's package is loaded as ``_api.LateWorker`` loads it.
_SERVER_SETTINGS = """
import json, sys
from fless.node._uvicorn import load_server_parts
load_server_parts()
load_server_parts()
import uvicorn
from uvicorn.config import Config
from fless.node._api import HttpLimits
from fless.node._http import bounded_worker
limits = HttpLimits(
    max_header_bytes=8192, max_headers=100, header_timeout_s=10, max_connections=100
)
kwargs = bounded_worker(limits, 30).CONFIG_KWARGS
async def app(scope, receive, send):
    pass
config = Config(app=app, **{**kwargs, "lifespan": "on"})
config.load()
websocket = ("wsproto", "h11", "websockets")
print(json.dumps({
    "websocket": sorted(m for m in sys.modules if m.split(".")[0] in websocket),
    "cli": sorted(m for m in sys.modules if m.split(".")[0] == "click" or m == "uvicorn.main"),
    "lifespan": config.lifespan_class.__name__,
    "exported": [uvicorn.Config is Config, uvicorn.__version__ > "0"],
}))
"""


def test_an_api_process_loads_no_websocket_implementation_and_no_command_line() -> None:
    # fless has no WebSocket route and its protocol answers an upgrade as
    # plain HTTP (tests/faults/test_http_limits.py); uvicorn's "auto" loaded
    # wsproto and h11 anyway, 0.7 MiB of every API process.
    loaded = run_script(_SERVER_SETTINGS)
    assert loaded["websocket"] == []
    # Nor uvicorn's command line (click), and its lifespan, which imports
    # from the package, still loads.
    assert loaded["cli"] == []
    assert loaded["lifespan"] == "LifespanOn"
    assert loaded["exported"] == [True, True]
