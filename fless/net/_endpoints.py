"""What ZeroMQ endpoints say about where traffic goes, without touching a socket."""

from __future__ import annotations

from collections.abc import Iterable

from fless._addresses import is_loopback


def plaintext_allowed(endpoints: Iterable[str], insecure: bool) -> bool:
    """Whether RPC may run without CURVE on these endpoints.

    True when ``insecure`` is set, or when every endpoint stays on this
    machine: a loopback address (127.0.0.0/8, ::1), ``localhost``, or an
    ``ipc://`` / ``inproc://`` endpoint. A wildcard bind (``tcp://*:port``)
    or any other host is reachable from the network. Callers log a warning
    whenever they run in plaintext.

    Args:
        endpoints: bind and connect endpoints (``tcp://host:port``; a bare
            ``host:port`` is read as TCP).
        insecure: the operator's explicit choice to run in plaintext anyway.
    """
    return insecure or all(_is_local(e) for e in endpoints)


def endpoint_host(endpoint: str) -> str:
    """The host part of a TCP endpoint, without IPv6 brackets.

    ``tcp://[::1]:5555`` gives ``::1``, ``tcp://10.0.0.2:5555`` gives
    ``10.0.0.2``, ``tcp://*:0`` gives ``*``.
    """
    rest = endpoint.partition("://")[2] if "://" in endpoint else endpoint
    # A connect endpoint may name a source address first: "src;host:port".
    rest = rest.rpartition(";")[2]
    host, sep, port = rest.rpartition(":")
    if not sep or not port:
        host = rest
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def _is_local(endpoint: str) -> bool:
    transport = endpoint.partition("://")[0].lower() if "://" in endpoint else "tcp"
    if transport in ("ipc", "inproc"):
        return True
    if transport != "tcp":
        return False
    return is_loopback(endpoint_host(endpoint).lower())
