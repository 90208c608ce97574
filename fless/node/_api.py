"""The REST API under gunicorn: the master supervises, each API process is a full core."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.workers.base import Worker

from fless.config import Settings

from ._stop import STOP_MARGIN_S, NodeArbiter, stopped


def api_processes(role: str, workers: int, cpus: int) -> int:
    """How many API processes the gunicorn master keeps.

    Args:
        role: the node's role, ``all`` or ``core``.
        workers: ``api.workers``; 0 asks for the default.
        cpus: CPUs this process may run on.

    Returns:
        ``workers`` when set. Otherwise one per CPU for ``all``, whose API
        processes run functions as well, since one Python process runs Python
        on one core at a time; one for ``core``, whose API processes only
        parse HTTP and forward calls, which keeps a core small on a board.
    """
    if workers > 0:
        return workers
    return max(cpus, 1) if role == "all" else 1


@dataclass(frozen=True)
class HttpLimits:
    """The ``[api]`` limits of the HTTP server, per connection and per API process."""

    max_header_bytes: int
    max_headers: int
    header_timeout_s: float
    max_connections: int
    body_timeout_s: float = 30.0


class LateWorker(Worker):  # type: ignore[misc]
    """The worker gunicorn's master makes: it becomes uvicorn's in the API process.

    gunicorn makes each worker object in the master and then forks, and
    uvicorn's worker builds its server's settings when it is made: the
    master would import uvicorn, asyncio and click for that, and keep them
    for the node's life (without them it went from 29.8 to 25.6 MiB,
    measured). This stand-in is gunicorn's plain worker until the fork. In
    the API process ``init_process`` turns it into the worker
    ``_http.bounded_worker`` makes, keeping the heartbeat file the master
    watches (``tmp``) and its pid.
    """

    LIMITS: HttpLimits
    DRAIN_S: int
    tmp: Any  # gunicorn's WorkerTmp, set by Worker.__init__
    pid: Any  # "[booting]", then the process id

    def init_process(self) -> None:
        """In the API process: becomes uvicorn's worker, then runs as it does."""
        from ._uvicorn import load_server_parts

        load_server_parts()
        from ._http import bounded_worker

        uvicorn_worker = bounded_worker(self.LIMITS, self.DRAIN_S)
        heartbeat, pid = self.tmp, self.pid
        self.__class__ = uvicorn_worker
        uvicorn_worker.__init__(
            self, self.age, self.ppid, self.sockets, self.app, self.timeout, self.cfg, self.log
        )
        self.tmp.close()  # the file its __init__ made, which the master never saw
        self.tmp, self.pid = heartbeat, pid
        self.init_process()


def late_worker(limits: HttpLimits, drain_s: int) -> type[LateWorker]:
    """The worker class for gunicorn: uvicorn's with ``limits`` and ``drain_s``, made late."""
    return type("FlessWorker", (LateWorker,), {"LIMITS": limits, "DRAIN_S": drain_s})


def _forget_metrics(server: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: drops a dead API process's live gauges."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


class ApiServer(BaseApplication):  # type: ignore[misc]
    """gunicorn, configured from the settings, serving the Falcon app with uvicorn workers."""

    def __init__(self, settings: Settings, processes: int, node: str) -> None:
        self.settings = settings
        self.processes = processes  # see ``api_processes``
        self.node = node  # the node's name; each API process gossips as one of its processes
        super().__init__()

    def run(self) -> None:
        """Serves until stopped, with SIGINT as graceful as SIGTERM (``NodeArbiter``)."""
        try:
            NodeArbiter(self).run()
        except RuntimeError as exc:  # as gunicorn's own run: a bind that failed, say
            print(f"\nError: {exc}\n", file=sys.stderr, flush=True)
            sys.exit(1)

    def load_config(self) -> None:
        """Sets gunicorn's options from the settings (no gunicorn config file is read)."""
        api = self.settings.api
        stop_s = self.settings.drain_timeout_s + STOP_MARGIN_S
        options: dict[str, Any] = {
            "bind": [f"[{api.host}]:{api.port}" if ":" in api.host else f"{api.host}:{api.port}"],
            "workers": self.processes,
            # uvicorn's worker with the HTTP limits of [api] (see _http).
            "worker_class": late_worker(
                HttpLimits(
                    max_header_bytes=api.max_header_bytes,
                    max_headers=api.max_headers,
                    header_timeout_s=api.header_timeout_ms / 1000,
                    max_connections=api.max_connections,
                    body_timeout_s=api.body_timeout_ms / 1000,
                ),
                self.settings.drain_timeout_s,
            ),
            "proc_name": "fless-node",
            # An API process whose event loop stalls this long is replaced. A
            # stopping one stops reporting in: at a reload (SIGHUP) the master
            # would replace an old process still draining, so never sooner.
            "timeout": max(60, stop_s),
            # A stopping API process finishes its calls for up to the drain
            # time, then leaves the cluster; past this it is SIGKILLed.
            "graceful_timeout": stop_s,
            "on_exit": stopped,
            "keepalive": 30,
            "loglevel": self.settings.log_level,
            "accesslog": None,
            "errorlog": "-",
            "preload_app": False,
        }
        if self.settings.api.metrics:
            options["child_exit"] = _forget_metrics
        if api.tls_certfile:
            # uvicorn's worker takes these from gunicorn and serves TLS itself.
            options["certfile"] = api.tls_certfile
            options["keyfile"] = api.tls_keyfile
        # gunicorn 25+ opens a control socket in $HOME by default; a node needs
        # none, and two nodes on one machine would fight over it.
        if "control_socket_disable" in self.cfg.settings:
            options["control_socket_disable"] = True
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        """Builds the app in the API process, after the fork."""
        from fless._heap import settle
        from fless.api import answer_cut_off, create_app

        from ._data import write_admin_key
        from ._platform import open_platform

        settings = self.settings

        def save_admin_key(key: str) -> None:
            write_admin_key(settings, key)

        app = create_app(
            open_platform(settings, self.node),
            settings.api.max_request_bytes,
            rate_limit_per_s=settings.api.rate_limit_per_s,
            rate_burst=settings.api.rate_burst,
            save_admin_key=save_admin_key,
            max_body_bytes_in_flight=settings.api.max_body_bytes_in_flight,
            public_rate_per_s=settings.api.public_rate_per_s,
            public_rate_burst=settings.api.public_rate_burst,
        )
        # The app's objects are left out of the collector's passes, and what
        # the imports and the app's making freed goes back (fless/_heap.py).
        settle()
        # A call still running at the drain time is answered 503, not uvicorn's 500.
        return answer_cut_off(app)
