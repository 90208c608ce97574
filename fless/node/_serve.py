"""Running a node for its role until it is stopped."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from fless import __version__
from fless.config import Settings

from ._identity import advertise_host, bind_udp, node_name, where_it_listens
from ._keys import KeyError_, check_keys, has_keys, keygen

log = logging.getLogger("fless.node")


def serve(settings: Settings) -> int:
    """Runs the node for its role until it is stopped; the exit status."""
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if settings.role == "worker":
        return _serve_worker(settings)
    status, key_file = _in_child(_prepare, settings)
    if status:
        return status
    if settings.api.metrics:
        share_metrics(settings.data_path / "metrics")
    from ._api import ApiServer, api_processes  # gunicorn: only the roles that serve HTTP

    processes = api_processes(settings.role, settings.api.workers, len(os.sched_getaffinity(0)))
    settings = meeting_port(settings, processes)
    print(
        f"fless-node {__version__}: role {settings.role}, {processes} API processes; "
        f"{where_it_listens(settings, has_keys(settings.key_path))}; "
        f"data in {settings.data_path}, admin key in {key_file}",
        file=sys.stderr,
        flush=True,
    )
    # Named here, in the master: its API processes are one node, whatever their pids.
    ApiServer(settings, processes, node_name(settings.role, settings)).run()
    return 0


def _prepare(settings: Settings) -> Path:
    """The data directory, the admin key and the cluster keys, made or checked.

    Returns:
        The admin key's file.

    Raises:
        KeyError_: the keys are missing or unusable (``check_keys``).
    """
    from ._data import prepare_data_dir  # the store: see ``_in_child``

    key_file = prepare_data_dir(settings)
    if not has_keys(settings.key_path) and not settings.cluster.insecure:
        # The first core of a cluster makes its keys; workers get a copy.
        keygen(settings.key_path)
        log.info("created the cluster keys in %s; copy them to every worker", settings.key_path)
    check_keys(settings, [advertise_host(settings)])
    return key_file


def _in_child(prepare: Callable[[Settings], Path], settings: Settings) -> tuple[int, Path]:
    """Runs ``prepare`` in a child process: its exit status, and the path it returned.

    The gunicorn master only supervises. Opening the store and reading the
    keys imports LMDB, the core's records and ZeroMQ, and what the master
    imports stays in its memory for the node's life, and is counted again
    in every API process it forks: the master went from 34.5 to 29.8 MiB
    (measured, ``python -m bench --only memory``). A child takes that with
    it when it exits.
    """
    read, write = os.pipe()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read)
        status = 1
        try:
            os.write(write, os.fsencode(prepare(settings)))
            status = 0
        except KeyError_ as exc:
            print(f"fless-node: {exc}", file=sys.stderr)
            status = 2
        except OSError as exc:  # a data or key directory that cannot be made or read
            print(f"fless-node: cannot prepare {settings.data_path}: {exc}", file=sys.stderr)
            status = 2
        except BaseException:
            log.exception("fless-node: could not prepare the data directory")
        finally:
            logging.shutdown()
            sys.stderr.flush()
            os._exit(status)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        path = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    status = os.waitstatus_to_exitcode(wait_status)
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        print(f"fless-node: preparing {settings.data_path} was stopped by {name}", file=sys.stderr)
        return 1, Path()
    if status == 0 and not path:
        status = 1
    return status, Path(os.fsdecode(path))


def meeting_port(settings: Settings, processes: int) -> Settings:
    """The settings with a concrete gossip port when several API processes must meet.

    Each API process is a gossip member; the first binds ``cluster.gossip_port``
    and the others join it there. With port 0 ("any free port") each would
    take a port of its own and never find its siblings, so each would list
    and schedule a different cluster. The master picks one free port for
    them all before it forks.
    """
    if settings.cluster.gossip_port or processes < 2:
        return settings
    host = advertise_host(settings)
    try:
        port = bind_udp(host, 0)
    except OSError as exc:
        # Each process then takes a port of its own; the gossip member
        # reports its own bind error, if any, with its context.
        log.warning("gossip: found no free port on %s for the API processes (%s)", host, exc)
        return settings
    log.info("gossip: the API processes meet on port %s (cluster.gossip_port is 0)", port)
    return replace(settings, cluster=replace(settings.cluster, gossip_port=port))


def share_metrics(directory: Path) -> None:
    """Sets up prometheus-client's multiprocess mode for the API processes to come.

    Files of a previous run are removed: their processes are gone, and their
    gauges would linger.
    """
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True, mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def _serve_worker(settings: Settings) -> int:
    settings.data_path.mkdir(parents=True, exist_ok=True, mode=0o700)
    # fless-node deferred OpenSSL before importing this (fless._openssl).
    # For the same reason a worker runs asyncio's own loop: uvloop imports
    # ssl, and a worker's loop carries only ZeroMQ and gossip.
    import asyncio

    from ._worker import run_worker  # a worker never loads gunicorn or falcon

    try:
        asyncio.run(run_worker(settings))
    except KeyError_ as exc:
        print(f"fless-node: {exc}", file=sys.stderr)
        return 2
    return 0
