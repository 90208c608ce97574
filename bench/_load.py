"""The load generator: wrk, with one Lua script that POSTs the hello's args.

Every HTTP figure (fless, the Falcon floor, the workerd peer) is driven by
the same client, the same request bytes and the same script, so they differ
only in the server. A latency run is ``wrk -t1 -c1 --latency`` for a budget
of requests over one keep-alive connection; a throughput run is ``wrk -t2
-cN`` for some seconds. The numbers come from wrk's own report (its latency
distribution, ``Requests/sec``, socket errors); the script adds a count of
answers that were not 200 and stops a thread once its request budget is spent.

wrk sleeps for its whole ``-d`` even when every thread has stopped, so a
thread that has spent its budget says so on stdout and the harness sends wrk
SIGINT once all have: wrk then reports at once, over the time it really ran.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import math
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._model import BenchConfig, Figure, median
from ._report import cpu_times, join_notes, stolen_since, tool_version

WRK_INSTALL = "apt-get install -y wrk"
SCRIPT = """\
-- fless bench: POST the args given after `--`; count non-200 answers; stop a
-- thread after its budget of answers (0: run for the whole duration).
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  budget = tonumber(args[1]) or 0
  answered = 0
  non200 = 0
  wrk.method = "POST"
  wrk.body = args[2]
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then
    non200 = non200 + 1
  end
  if budget > 0 and answered == budget then
    io.write("fless-bench spent\\n")
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non200") or 0)
  end
  io.write(string.format("fless-bench non200: %d\\n", bad))
end
"""
_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_QUANTITY = re.compile(r"^([\d.]+)([a-z]+)$")


@dataclass(frozen=True)
class Target:
    """Where to send the load: a URL and the headers of the request (the body is the args)."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: str = json.dumps({"args": {"name": "bench"}}, separators=(",", ":"))


@dataclass(frozen=True)
class WrkRun:
    """What one wrk run reported.

    Attributes:
        requests: requests completed.
        seconds: how long the run took.
        rate: requests per second.
        p50_ms: median latency (latency runs only).
        p99_ms: 99th percentile latency (latency runs only).
        non200: answers that were not 200 (counted by the script).
        socket_errors: connect, read, write and timeout errors.
    """

    requests: int
    seconds: float
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    non200: int
    socket_errors: int

    @property
    def errors(self) -> int:
        """Failed requests of any kind."""
        return self.non200 + self.socket_errors


class LoadError(RuntimeError):
    """wrk is missing, failed, or reported something unreadable."""


def wrk_binary() -> str | None:
    """The wrk executable, if installed."""
    return shutil.which("wrk")


def install_wrk() -> str | None:
    """Installs Debian's wrk when it is missing and this is root; None if it is there,
    else why not (with the command to run)."""
    if wrk_binary() is not None:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"wrk is not installed; as root on Debian: {WRK_INSTALL}"
    print(f"bench: installing wrk: {WRK_INSTALL}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = None
    # The package lists may be missing or stale on a fresh machine: update, then retry.
    for step in (WRK_INSTALL, "apt-get update -qq", WRK_INSTALL):
        result = subprocess.run(step.split(), capture_output=True, text=True, env=env, check=False)
        if step == WRK_INSTALL and result.returncode == 0:
            break
    if wrk_binary() is None:
        detail = (result.stderr or result.stdout).strip()[-500:] if result else ""
        return f"`{WRK_INSTALL}` failed: {detail}"
    return None


def wrk_version() -> str | None:
    """wrk's version (``wrk -v`` prints it before its usage)."""
    binary = wrk_binary()
    line = tool_version([binary, "-v"]) if binary else None
    return line.split(" Copyright")[0].removeprefix("wrk ") if line else None


def parse_time_ms(text: str) -> float:
    """wrk's time, e.g. ``345.12us`` or ``1.02ms``, in milliseconds."""
    match = _QUANTITY.match(text.strip())
    if match is None or match.group(2) not in _TIME_UNITS:
        raise LoadError(f"wrk printed a time that is not one: {text!r}")
    return float(match.group(1)) * _TIME_UNITS[match.group(2)]


def parse_wrk(output: str) -> WrkRun:
    """Reads a wrk report (with ``--latency`` for the percentiles).

    Raises:
        LoadError: a line every report has is missing.
    """
    done = re.search(r"^\s*(\d+) requests in ([\d.]+\w+),", output, re.M)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.M)
    if done is None or rate is None:
        raise LoadError(f"not a wrk report:\n{output}")
    percentiles = {
        int(m.group(1)): parse_time_ms(m.group(2))
        for m in re.finditer(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.M)
    }
    socket = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    scripted = re.search(r"^fless-bench non200: (\d+)", output, re.M)
    # The script's count covers wrk's non-2xx count (and 3xx too); without the
    # script's line, wrk's own count is all there is.
    non200 = int(scripted.group(1)) if scripted else int(non2xx.group(1)) if non2xx else 0
    return WrkRun(
        requests=int(done.group(1)),
        seconds=parse_time_ms(done.group(2)) / 1e3,
        rate=float(rate.group(1)),
        p50_ms=percentiles.get(50),
        p99_ms=percentiles.get(99),
        non200=non200,
        socket_errors=sum(int(n) for n in socket.groups()) if socket else 0,
    )


def run_wrk(
    config: BenchConfig,
    target: Target,
    *,
    connections: int,
    threads: int,
    seconds: int,
    budget: int = 0,
    latency: bool = False,
) -> WrkRun:
    """One wrk run against ``target``.

    Args:
        config: where the script is written.
        target: the server.
        connections: keep-alive connections, shared by the threads.
        threads: client threads.
        seconds: how long to run (wrk takes whole seconds), or the cap when
            there is a budget.
        budget: stop each thread after this many answers (0: no budget).
        latency: ask for the latency distribution.

    Raises:
        LoadError: wrk is missing, failed, or printed no report.
    """
    binary = wrk_binary()
    if binary is None:
        raise LoadError(f"wrk is not installed: {WRK_INSTALL}")
    script = config.work_dir / "wrk" / "post.lua"
    if not script.exists() or script.read_text() != SCRIPT:
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(SCRIPT)
    command = [
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, seconds)}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
    ]
    if latency:
        command.append("--latency")
    for name, value in (("Content-Type", "application/json"), *target.headers):
        command += ["-H", f"{name}: {value}"]
    command += [target.url, "--", str(budget), target.body]
    output = _run_until_spent(command, threads if budget else 0, max(1, seconds) + 60)
    return parse_wrk(output)


def _run_until_spent(command: list[str], threads: int, timeout: float) -> str:
    """Runs wrk; once ``threads`` threads said their budget is spent, interrupts it."""
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        # wrk ends by itself after -d; this only guards against a hung client.
        guard = threading.Timer(timeout, proc.kill)
        guard.start()
        try:
            lines: list[str] = []
            spent = 0
            for line in proc.stdout:
                lines.append(line)
                if line.startswith("fless-bench spent"):
                    spent += 1
                    if spent == threads:
                        proc.send_signal(signal.SIGINT)
            stderr = proc.stderr.read()
            code = proc.wait()
        finally:
            guard.cancel()
    output = "".join(lines)
    if code != 0:
        raise LoadError(f"wrk failed ({code}): {stderr or output}")
    return output


def warm_up(config: BenchConfig, target: Target) -> None:
    """A short run to warm the server (caches, JIT, connection handling), not measured."""
    run_wrk(config, target, connections=1, threads=1, seconds=5, budget=20 if config.smoke else 300)


def latency_figure(
    config: BenchConfig,
    target: Target,
    group: str,
    name: str,
    floor: str | None = None,
    note: str = "",
) -> Figure:
    """Warm latency over one keep-alive connection: the median over the runs of each
    run's p50 (``value``) and p99, in ms, from ``config.requests`` requests a run."""
    warm_up(config, target)
    before = cpu_times()
    runs = [
        run_wrk(
            config,
            target,
            connections=1,
            threads=1,
            latency=True,
            budget=config.requests,
            seconds=_latency_cap(config.requests),
        )
        for _ in range(config.repeats)
    ]
    stolen = stolen_since(before)
    p50s = [r.p50_ms for r in runs if r.p50_ms is not None]
    p99s = [r.p99_ms for r in runs if r.p99_ms is not None]
    if len(p50s) != len(runs) or len(p99s) != len(runs):
        raise LoadError("wrk printed no latency distribution")
    short = [r.requests for r in runs if r.requests < config.requests]
    cut = f"runs ended by the time cap after {min(short)} requests" if short else ""
    return Figure(
        group=group,
        name=name,
        value=median(p50s),
        unit="ms",
        p99=median(p99s),
        floor=floor,
        runs=tuple(p50s),
        errors=sum(r.errors for r in runs),
        note=join_notes(note, cut, stolen),
    )


def throughput_figure(
    config: BenchConfig,
    target: Target,
    connections: int,
    group: str,
    name: str,
    floor: str | None = None,
    note: str = "",
) -> Figure:
    """Invocations per second with ``connections`` keep-alive connections on two
    client threads, for ``config.seconds`` a run; the median over the runs."""
    warm_up(config, target)
    threads = min(2, connections)
    seconds = max(1, round(config.seconds))
    # wrk counts whole seconds; shorter runs (the smoke test) end on a budget.
    budget = 0 if config.seconds >= 1 else max(1, math.ceil(config.requests / threads))
    before = cpu_times()
    runs = [
        run_wrk(
            config, target, connections=connections, threads=threads, seconds=seconds, budget=budget
        )
        for _ in range(config.repeats)
    ]
    rates = [r.rate for r in runs]
    return Figure(
        group=group,
        name=name,
        value=median(rates),
        unit="req/s",
        floor=floor,
        runs=tuple(rates),
        errors=sum(r.errors for r in runs),
        note=join_notes(note, stolen_since(before)),
    )


def _latency_cap(requests: int) -> int:
    # Enough for the budget at 100 requests a second; a slower server is cut
    # short, and the figure's note says so.
    return math.ceil(requests / 100) + 5


@contextlib.contextmanager
def served(
    command: list[str], target: Target, log_path: Path, timeout: float = 30.0
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs a server (its own process group) until the block ends; ready once it
    answers the target's request with 200.

    Raises:
        LoadError: it exited or did not answer within ``timeout``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout
        while not _answers(target):
            if proc.poll() is not None or time.monotonic() > deadline:
                state = "exited" if proc.poll() is not None else f"not ready in {timeout:.0f} s"
                raise LoadError(f"{command[0]} {state}:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _answers(target: Target) -> bool:
    parts = urllib.parse.urlsplit(target.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=2)
    try:
        conn.request(
            "POST",
            parts.path,
            target.body.encode(),
            {"Content-Type": "application/json", **dict(target.headers)},
        )
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()
