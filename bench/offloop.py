"""How much keeping Wasm off the event loop costs: inline call against a thread hop.

Runs the FunLess-ABI hello fixture N times each way in one process and
prints p50/p99 in microseconds and the ratio. Usage:

    .venv/bin/python bench/offloop.py [N]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import wasmtime

from fless.exec import Limits, WasmRuntime

ROOT = Path(__file__).resolve().parent.parent


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(count: int) -> None:
    runtime = WasmRuntime()
    code = wasmtime.wat2wasm((ROOT / "tests/fixtures/wat/fl_hello.wat").read_text())
    function = runtime.compile(code)
    args, limits = b'{"name":"bench"}', Limits()
    pool = ThreadPoolExecutor(2)
    loop = asyncio.get_running_loop()
    for _ in range(200):  # warm up both paths
        runtime.run(function, args, limits)
        await loop.run_in_executor(pool, runtime.run, function, args, limits)

    inline, hopped = [], []
    for _ in range(count):
        start = time.perf_counter()
        runtime.run(function, args, limits)
        inline.append(time.perf_counter() - start)
        start = time.perf_counter()
        await loop.run_in_executor(pool, runtime.run, function, args, limits)
        hopped.append(time.perf_counter() - start)
    runtime.close()
    for name, samples in (("inline", inline), ("run_in_executor", hopped)):
        print(
            f"{name:16} p50 {percentile(samples, 0.5) * 1e6:7.1f} us   "
            f"p99 {percentile(samples, 0.99) * 1e6:7.1f} us"
        )
    print(
        f"thread hop adds {(statistics.median(hopped) - statistics.median(inline)) * 1e6:.1f} us "
        f"at p50 (ratio {statistics.median(hopped) / statistics.median(inline):.2f})"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))
