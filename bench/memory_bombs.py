"""Resident growth of a real node under each memory bomb of ``tests/fixtures/bombs``.

Starts one ``fless-node`` (role all, one API process) per bomb, uploads the
bomb with a user key, invokes it when the upload was taken, deletes it, and
prints the node's resident memory (master and API process, VmRSS from
/proc) before, after the upload, after the invoke and after the delete, and
the growth of its peak (VmHWM: the high-water mark, which a bomb that is
freed at the end of its call still raises), with the statuses and times.
Usage:

    .venv/bin/python bench/memory_bombs.py [NAME ...]

With ``PYTHONPATH`` pointing at another checkout, it measures that code
(how docs/SECURITY.md's "before" figures were taken).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from fless._units import MiB

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests")]

from e2e.node import Node, multipart  # noqa: E402
from fixtures import bombs  # noqa: E402

BOMBS: dict[str, Callable[[], bytes]] = {
    "table_grow": lambda: bombs.table_grow(200_000_000),
    "big_table": lambda: bombs.big_table(50_000_000),
    "many_tables": lambda: bombs.many_tables(64, 1_000_000),
    "many_memories": lambda: bombs.many_memories(16, pages=256),
    "functions_250k": lambda: bombs.functions(250_000),
    "functions_45k": lambda: bombs.functions(45_000),
}


def rss(node: Node, field: str = "VmRSS") -> int:
    """Resident bytes of the node's processes (``RssAnon``: without file pages)."""
    assert node.proc is not None
    total = 0
    for pid in [node.proc.pid, *node.api_pids()]:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                total += int(line.split()[1]) * 1024
    return total


def measure(name: str, code: bytes) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        node = Node(Path(tmp) / "data", env={"FLESS_API_WORKERS": "1"}).start()
        try:
            _, body = node.post_json("/v1/admin/subjects", {"subject": {"name": "bomber"}})
            key = body["data"]["token"]
            # One small function run first: the node's own warm-up is not the bomb's.
            node.upload("_", "small", bombs.functions(1))
            node.post_json("/v1/fn/_/small", {"args": {}})
            time.sleep(1)
            base, anon, peak = rss(node), rss(node, "RssAnon"), rss(node, "VmHWM")
            row: dict[str, object] = {"bomb": name, "bytes": len(code)}
            form, ctype = multipart([("name", None, b"bomb"), ("code", "b.wasm", code)])
            start = time.monotonic()
            status, answer = node.request(
                "POST", "/v1/fn/_", form, {"Content-Type": ctype}, auth=key, timeout=600
            )
            row["upload"] = status
            row["upload_s"] = round(time.monotonic() - start, 1)
            if status >= 400:
                row["detail"] = answer["errors"]["detail"][:90]
            row["after_upload_mib"] = round((rss(node) - base) / MiB)
            if status < 400:
                status, answer = node.post_json("/v1/fn/_/bomb", {"args": {}}, auth=key)
                row["invoke"] = status
                row["after_invoke_mib"] = round((rss(node) - base) / MiB)
                node.request("DELETE", "/v1/fn/_/bomb", auth=key)
                time.sleep(0.5)
                row["after_delete_mib"] = round((rss(node) - base) / MiB)
                row["after_delete_anon_mib"] = round((rss(node, "RssAnon") - anon) / MiB)
            row["peak_growth_mib"] = round((rss(node, "VmHWM") - peak) / MiB)
            row["serves"] = node.request("GET", "/v1/", auth=False)[0] == 200
            return row
        finally:
            node.stop()


def main(names: list[str]) -> None:
    for name in names or list(BOMBS):
        print(json.dumps(measure(name, BOMBS[name]())), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
