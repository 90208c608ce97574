"""Cron bindings on a real fless-node, without waiting for a tick: what a restart makes up.

When a tick falls is unit-tested with an injected clock (test_cron.py);
here a binding whose last tick is long past, as after a core that was down
for two days, runs once when the node comes back, not once per missed tick.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from e2e.node import Node, multipart, wait_for
from fixtures.build import wat

from fless.events._service import binding_id

pytestmark = pytest.mark.slow

DAILY = {"type": "cron", "params": {"schedule": "0 3 * * *", "args": {"from": "cron"}}}


def runs(node: Node) -> list[dict[str, Any]]:
    status, answer = node.request("GET", "/v1/invocations?limit=100")
    assert status == 200
    return [i for i in answer["data"] if (i["module"], i["name"]) == ("_", "daily")]


def test_ticks_missed_while_down_are_made_up_once_at_start(tmp_path: Path) -> None:
    node = Node(tmp_path / "node").start()
    try:
        fields = [
            ("name", None, b"daily"),
            ("code", "f.wasm", wat("fl_hello")),
            ("events", None, json.dumps([DAILY]).encode()),
        ]
        body, ctype = multipart(fields)
        status, answer = node.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})
        assert status == 201, answer
        wait_for(lambda: "serving cron for _/daily" in node.log(), 10, "the cron binding served")
        assert runs(node) == []  # a new binding waits for its next tick
        status, shown = node.request("GET", "/v1/fn/_/daily")
        entry = shown["data"]["events"][0]
        node.stop()

        # As if the last tick fired two days ago and the core was down since.
        events = node.data_dir / "events"
        bid = binding_id((events / "node-id").read_text().strip(), "_", "daily", entry)
        (events / "cron" / bid).write_text(repr(time.time() - 2 * 86400))
        node.start()
        wait_for(lambda: len(runs(node)) >= 1, 15, "the made-up run")
        time.sleep(2)  # time for any further (wrong) runs to show
        made_up = runs(node)
        assert len(made_up) == 1
        assert made_up[0]["outcome"] == "ok"
        status, shown = node.request("GET", "/v1/fn/_/daily")
        state = shown["data"]["bindings"]["events"][0]
        assert "last_tick" in state and state["next_tick"] > state["last_tick"]
    finally:
        node.stop()
