"""Request rate limits per API key, or per client address: a token bucket for each, no clock inside.

Each subject's bucket holds up to ``burst`` tokens and refills at ``rate``
tokens a second; a request takes one token or is refused with the seconds
until one is back. The buckets live in one API process: with N processes a
subject may get up to N times the rate in total (the kernel spreads
connections over the processes), which is the price of keeping the check out
of LMDB's write path.

The public trigger limits callers without a key by their address
(``client_address``), which anyone can have many of: the buckets kept are
bounded, the least recently used forgotten first.
"""

from __future__ import annotations

import ipaddress
import math
import time
from dataclasses import dataclass

import falcon

# Buckets of subjects idle this long are full again and can be forgotten.
_FORGET_AFTER_S = 600.0
_SWEEP_EVERY = 1024
# Buckets kept at most (about 100 bytes each): past it the least recently
# used is forgotten, which gives that caller a full bucket again, the
# price of a bound on what a flood from many addresses can make a process hold.
MOST_BUCKETS = 65_536


@dataclass
class TokenBucket:
    """Tokens available to one subject, as of ``stamp`` (monotonic seconds)."""

    tokens: float
    stamp: float

    def take(self, now: float, rate: float, burst: float) -> float:
        """Takes a token if one is there.

        Args:
            now: monotonic seconds.
            rate: tokens added per second.
            burst: the most tokens the bucket holds.

        Returns:
            0 when a token was taken; otherwise the seconds until one is available.
        """
        self.tokens = min(burst, self.tokens + max(0.0, now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / rate


class RateLimiter:
    """One token bucket per subject.

    Args:
        rate: requests per second each subject may sustain; 0 turns limits off.
        burst: requests a subject may make at once after being idle (at least 1).
        most: buckets kept at most (the least recently used go first).
    """

    def __init__(self, rate: float, burst: int, most: int = MOST_BUCKETS) -> None:
        self.rate = rate
        self.burst = float(max(burst, 1))
        self.most = max(most, 1)
        # In order of last use (a dict keeps insertion order): the first is
        # the one to forget.
        self._buckets: dict[str, TokenBucket] = {}
        self._calls = 0

    @property
    def enabled(self) -> bool:
        """Whether any limit applies."""
        return self.rate > 0

    def wait(self, subject: str, now: float) -> float:
        """Counts one request of ``subject``.

        Args:
            subject: who is calling (their name: one key per subject).
            now: monotonic seconds.

        Returns:
            0 to let the request through, or the seconds to wait before the next.
        """
        if not self.enabled:
            return 0.0
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._forget_idle(now)
        bucket = self._buckets.pop(subject, None)
        if bucket is None:
            if len(self._buckets) >= self.most:
                del self._buckets[next(iter(self._buckets))]
            bucket = TokenBucket(self.burst, now)
        self._buckets[subject] = bucket
        return bucket.take(now, self.rate, self.burst)

    def _forget_idle(self, now: float) -> None:
        idle = [name for name, b in self._buckets.items() if now - b.stamp > _FORGET_AFTER_S]
        for name in idle:
            del self._buckets[name]


def client_address(host: str) -> str:
    """The bucket a caller without a key counts against: its IPv4 address,
    or its IPv6 address's /64 (one host is commonly given a whole /64).

    Args:
        host: the peer's address as the server gives it (any text: a Unix
            socket's peer, or a test's, has none of IP's form).
    """
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def hold_to(limiter: RateLimiter, key: str, limit: str) -> None:
    """Takes a token of ``key``'s bucket, or refuses with a 429 and ``Retry-After``.

    Args:
        limiter: the buckets.
        key: whose bucket (a subject's name, a client's address).
        limit: the limit, as the refusal names it ("the rate limit").
    """
    wait = limiter.wait(key, time.monotonic())
    if wait > 0:
        seconds = retry_after(wait)
        raise falcon.HTTPTooManyRequests(
            title="Too Many Requests",
            description=(
                f"{key} is over {limit} of {limiter.rate:g} requests per second; "
                f"retry in {seconds} s"
            ),
            retry_after=seconds,
        )


def retry_after(wait: float) -> int:
    """``Retry-After`` in whole seconds (at least 1), for a wait in seconds."""
    return max(1, math.ceil(wait))
