"""One long MQTT flood through role ``all``: the rate, and who spent the CPU.

``make bench``'s events group measures 5,000-event floods, alternated with
the bare echo. This runs one of N events (12,000 by default) through the
same broker, node and functions, and prints the rate, the CPU time each
process spent (each API process, Mosquitto, this client), and how busy the
machine was: what a change to the events path costs, and which process
pays. Alternate two settings in one session to compare them; whole runs
drift on a shared machine. Usage:

    .venv/bin/python -m bench.events_flood [N] [--workers W] [--spy DIR]

``--spy DIR`` records each API process with py-spy (raw stacks, 10 s) into
DIR, for ``py-spy``'s flame graphs or a count of frames.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import _events as events
from ._model import ROOT
from ._report import cpu_shares, cpu_times

# isort: split
from e2e.node import Node


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _processes(node: Node, broker_config: Path) -> dict[str, int]:
    """The API processes (children of the node's master), Mosquitto, and this client."""
    found = {"client (this process)": os.getpid()}
    listed = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(node.proc.pid)], capture_output=True, text=True
    ).stdout.split()
    for number, pid in enumerate(sorted(int(p) for p in listed), 1):
        found[f"API process {number} (pid {pid})"] = pid
    mosquitto = subprocess.run(
        ["pgrep", "-f", str(broker_config)], capture_output=True, text=True
    ).stdout.split()
    if mosquitto:
        found["mosquitto"] = int(mosquitto[0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", nargs="?", type=int, default=12_000)
    parser.add_argument("--workers", type=int, default=0, help="API processes (0: the default)")
    parser.add_argument("--spy", type=Path, help="record each API process with py-spy here")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="flood-"))
    extra = ["--workers", str(args.workers)] if args.workers else []
    with events._broker(root) as broker:
        node = Node(root / "all", None, *extra).start()
        try:
            with events._Timer(broker) as timer:
                events._create(node, broker)
                for n in range(300):  # warm: compiled, on the event loop, connections up
                    timer.round_trip(events.IN, events.OUT, n)
                processes = _processes(node, broker.config_path)
                spies = []
                if args.spy is not None:
                    args.spy.mkdir(parents=True, exist_ok=True)
                    spy = str(Path(shutil.which("py-spy") or ROOT / ".venv/bin/py-spy"))
                    for name, pid in processes.items():
                        if name.startswith("API"):
                            out = args.spy / f"spy-{pid}.txt"
                            command = [spy, "record", "-p", str(pid), "-d", "10", "-r", "200"]
                            command += ["-f", "raw", "-o", str(out), "--nonblocking"]
                            spies.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
                before = {name: _cpu_seconds(pid) for name, pid in processes.items()}
                machine = cpu_times()
                flood = events._flood(broker, timer, events.IN, events.OUT, 10**6, args.count)
                shares = cpu_shares(machine, cpu_times())
                spent = {name: _cpu_seconds(pid) - before[name] for name, pid in processes.items()}
                for spying in spies:
                    spying.wait()
        finally:
            node.stop()
    shutil.rmtree(root, ignore_errors=True)
    rate = flood.answered / flood.seconds if flood.seconds else 0.0
    print(f"{flood.answered:,} of {args.count:,} results in {flood.seconds:.2f} s: {rate:,.0f}/s")
    print(f"delivered twice: {flood.duplicates}; machine busy {shares.get('busy', 0):.0%}")
    for name, seconds in spent.items():
        per_event = seconds / max(1, flood.answered) * 1e3
        print(f"  {seconds:6.2f} s CPU  {per_event:5.3f} ms/event  {name}")
    fless = sum(s for name, s in spent.items() if name.startswith("API"))
    print(f"  {fless:6.2f} s CPU  {fless / max(1, flood.answered) * 1e3:5.3f} ms/event  fless")


if __name__ == "__main__":
    main()
