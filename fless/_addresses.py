"""Whether a host stays on this machine: the one loopback check of every package."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ``::1``) or ``localhost``.

    Any other name is not: resolving it could reach the network, and a check
    that decides whether plaintext is safe must not depend on DNS. Callers
    take off what their own syntax adds first (IPv6 brackets, a port, case).

    Args:
        host: an IP address without brackets, or a host name.
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
