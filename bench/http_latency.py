"""Warm invoke latency over one keep-alive HTTP connection, against a running node.

    .venv/bin/python bench/http_latency.py URL KEY_FILE WASM [N]

Uploads WASM as function ``_/bench_latency`` (replacing it), invokes it N
times with ``{"name": "bench"}`` and prints p50 and p99 in milliseconds.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

from fless.client import Client, FlessError


def main(url: str, key_file: str, wasm: str, count: int) -> None:
    client = Client(url, Path(key_file).read_text().strip())
    with contextlib.suppress(FlessError):
        client.delete_function("_", "bench_latency")
    client.create_function("_", "bench_latency", Path(wasm).read_bytes())
    for _ in range(200):
        client.invoke("_", "bench_latency", {"name": "bench"})
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        client.invoke("_", "bench_latency", {"name": "bench"})
        samples.append(time.perf_counter() - start)
    samples.sort()
    p50, p99 = samples[len(samples) // 2], samples[int(len(samples) * 0.99)]
    print(f"{count} invokes: p50 {p50 * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms")
    client.delete_function("_", "bench_latency")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 3000)
