"""How ``fless`` shows results: JSON for scripts, tables for people, a bar for uploads.

``--output json`` prints the server's data as JSON; ``--output table`` prints
the lists people read most (modules, functions, nodes, users, logs,
invocations) as aligned columns and anything else as JSON. Without the flag a
terminal gets tables and a pipe gets JSON, so scripts keep working.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from fless._units import MiB
from fless.cli._bindings import describe

Column = tuple[str, Callable[[dict[str, Any]], object]]


def _mib(value: object) -> str:
    return f"{int(value) // MiB} MiB" if isinstance(value, int) else "-"


def _memory(node: dict[str, Any]) -> str:
    return f"{_mib(node.get('mem_free'))} / {_mib(node.get('mem_total'))}"


def _first_line(entry: dict[str, Any]) -> str:
    lines = entry.get("logs") or []
    text = entry.get("error") or (lines[0] if lines else "")
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return f"{text}{more}"


def _size(value: object) -> str:
    """Bytes as people read them: 812 B, 41.3 KiB, 2.0 MiB."""
    if not isinstance(value, int):
        return "-"
    if value < 1024:
        return f"{value} B"
    return f"{value / 1024:.1f} KiB" if value < MiB else f"{value / MiB:.1f} MiB"


def _seconds(ms: object) -> str:
    """A timeout in ms as people read it: 10 s, 2.5 s, 300 ms."""
    if not isinstance(ms, int):
        return "-"
    return f"{ms} ms" if ms < 1000 else f"{ms / 1000:g} s"


def _ms(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "-"


TABLES: dict[str, Sequence[Column]] = {
    "modules": [("NAME", lambda m: m.get("name"))],
    "functions": [
        ("NAME", lambda f: f.get("name")),
        ("MODULE", lambda f: f.get("module") or ""),
        ("SIZE", lambda f: _size(f.get("size"))),
        ("MEMORY", lambda f: f"{f['memory']} MiB" if isinstance(f.get("memory"), int) else "-"),
        ("TIMEOUT", lambda f: _seconds(f.get("timeout"))),
        ("ABI", lambda f: f.get("abi") or ""),
        ("UPDATED", lambda f: f.get("updated") or ""),
    ],
    "apps": [
        ("NAME", lambda a: a.get("name")),
        ("TAGS", lambda a: ", ".join((a.get("script") or {}).get("tags") or {})),
    ],
    "nodes": [
        ("NAME", lambda n: n.get("name")),
        ("ROLE", lambda n: n.get("role")),
        ("STATE", lambda n: n.get("state")),
        ("ARCH", lambda n: n.get("arch")),
        ("MEMORY FREE / TOTAL", _memory),
        ("ADDRESS", lambda n: n.get("address")),
        ("WORKER", lambda n: n.get("worker_name") or ""),
        ("LABELS", lambda n: ", ".join(n.get("labels") or [])),
    ],
    "users": [
        ("NAME", lambda u: u.get("name")),
        ("ROLE", lambda u: u.get("role")),
        ("CREATED", lambda u: u.get("created")),
    ],
    "logs": [
        ("STARTED", lambda e: e.get("started")),
        ("INVOCATION", lambda e: e.get("id")),
        ("WORKER", lambda e: e.get("worker")),
        ("OUTCOME", lambda e: e.get("outcome")),
        ("MS", lambda e: _ms(e.get("duration_ms"))),
        ("LOG", _first_line),
    ],
    "invocations": [
        ("STARTED", lambda e: e.get("started")),
        ("INVOCATION", lambda e: e.get("id")),
        ("FUNCTION", lambda e: f"{e.get('module')}/{e.get('name')}"),
        ("WORKER", lambda e: e.get("worker") or "-"),
        ("OUTCOME", lambda e: e.get("outcome")),
        ("MS", lambda e: _ms(e.get("duration_ms"))),
    ],
}


def add_output_option(group: argparse._ArgumentGroup) -> None:
    """Adds ``--output json|table`` to a group of options."""
    group.add_argument(
        "--output",
        choices=("json", "table"),
        default=argparse.SUPPRESS,
        help="json (what scripts read) or table (default: table on a terminal, else json)",
    )


def output_format(args: argparse.Namespace, stream: TextIO | None = None) -> str:
    """The format asked for, or the default for where stdout goes."""
    chosen = getattr(args, "output", None)
    if chosen:
        return str(chosen)
    return "table" if (stream or sys.stdout).isatty() else "json"


def show(value: Any, fmt: str, kind: str | None = None, stream: TextIO | None = None) -> None:
    """Prints ``value``: as a ``kind`` table when asked and known, else as JSON."""
    out = stream or sys.stdout
    columns = TABLES.get(kind or "")
    if fmt == "table" and columns is not None and isinstance(value, list):
        out.write(table(value, columns))
        return
    out.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def function_text(function: dict[str, Any]) -> str:
    """A function's description for people: ``key: value`` lines, then one line per binding.

    Args:
        function: what ``GET /v1/fn/{module}/{name}`` answers.

    Returns:
        The text, with memory, timeout and size in units people read, ending with
        ``events:`` and ``sinks:`` sections ("(none)" when empty).
    """
    lines = []
    readable: dict[str, Callable[[object], str]] = {
        "memory": lambda v: f"{v} MiB" if isinstance(v, int) else "-",
        "timeout": _seconds,
        "size": _size,
    }
    for key, value in function.items():
        if key in ("events", "sinks", "bindings"):
            continue
        if key in readable:
            shown = readable[key](value)
        else:
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"{key}: {shown}")
    states = function.get("bindings") or {}
    for kind in ("events", "sinks"):
        entries = function.get(kind) or []
        lines.append(f"{kind}:" + ("" if entries else " (none)"))
        kind_states = states.get(kind) or []
        for i, entry in enumerate(entries):
            state = kind_states[i] if i < len(kind_states) else None
            lines.append(f"  {describe(entry)}" + (f" ({fares(state)})" if state else ""))
    if "outbox" in states:
        lines.append(f"outbox: {states['outbox']} results waiting for sinks")
    return "".join(line + "\n" for line in lines)


def fares(state: dict[str, Any]) -> str:
    """How one binding fares, in a few words: ``connected, 120 messages, last 12:03:01``.

    Args:
        state: one entry of ``bindings.events`` or ``bindings.sinks`` of a function.
    """
    words = []
    if "connected" in state:
        words.append("connected" if state["connected"] else "not connected")
    if "messages" in state:
        words.append(f"{state['messages']} messages")
    if "delivered" in state:
        words.append(f"{state['delivered']} delivered, {state.get('failures', 0)} failed")
    if state.get("next_tick"):
        words.append(f"next {state['next_tick']}")
    if state.get("error"):
        words.append(f"error: {state['error']}")
    return ", ".join(words)


def table(rows: list[dict[str, Any]], columns: Sequence[Column]) -> str:
    """``rows`` as left-aligned columns under upper-case headings ("(none)" when empty)."""
    if not rows:
        return "(none)\n"
    cells = [[name for name, _ in columns]]
    cells += [["" if (v := get(row)) is None else str(v) for _, get in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        + "\n"
        for line in cells
    )


def progress_bar(label: str, stream: TextIO | None = None) -> Callable[[int, int], None] | None:
    """A bar on stderr for an upload, or None when stderr is not a terminal."""
    err = stream or sys.stderr
    if not err.isatty():
        return None

    def report(done: int, total: int) -> None:
        width = 30
        filled = width * done // total if total else width
        percent = 100 * done // total if total else 100
        end = "\n" if done >= total else ""
        err.write(
            f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {percent:3d}% "
            f"{done // 1024} KiB{end}"
        )
        err.flush()

    return report


def completion_script(parser: argparse.ArgumentParser, prog: str = "fless") -> str:
    """A bash completion script for ``parser`` (zsh loads it with ``bashcompinit``).

    The words are read from the parser itself: each command path maps to its
    subcommands and options, so the script never lags behind the CLI.
    """
    words: dict[str, list[str]] = {}

    def walk(node: argparse.ArgumentParser, path: str) -> None:
        found: list[str] = []
        for action in node._actions:
            found += [o for o in action.option_strings if o.startswith("--")]
            if isinstance(action, argparse._SubParsersAction):
                for name, child in action.choices.items():
                    found.append(name)
                    walk(child, f"{path} {name}".strip())
        words[path] = sorted(set(found))

    walk(parser, "")
    cases = "\n".join(
        f'        "{path}") words="{" ".join(found)}" ;;' for path, found in sorted(words.items())
    )
    return f"""# bash completion for {prog}; load it with:  source <({prog} completion bash)
_{prog}_complete() {{
    local path="" word
    for word in "${{COMP_WORDS[@]:1:COMP_CWORD-1}}"; do
        case "$word" in -*) ;; *) path="${{path:+$path }}$word" ;; esac
    done
    local words=""
    case "$path" in
{cases}
    esac
    local current="${{COMP_WORDS[COMP_CWORD]}}"
    COMPREPLY=($(compgen -W "$words" -- "$current"))
    if [ ${{#COMPREPLY[@]}} -eq 0 ]; then COMPREPLY=($(compgen -f -- "$current")); fi
}}
complete -F _{prog}_complete {prog}
"""
