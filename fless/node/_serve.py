"""Running a node for its role until it is stopped."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

from fless import __version__
from fless.config import Settings

from ._data import prepare_data_dir
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
    key_file = prepare_data_dir(settings)
    if not has_keys(settings.key_path) and not settings.cluster.insecure:
        # The first core of a cluster makes its keys; workers get a copy.
        keygen(settings.key_path)
        log.info("created the cluster keys in %s; copy them to every worker", settings.key_path)
    try:
        check_keys(settings, [advertise_host(settings)])
    except KeyError_ as exc:
        print(f"fless-node: {exc}", file=sys.stderr)
        return 2
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
