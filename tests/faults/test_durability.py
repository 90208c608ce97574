"""Fault 3: ``kill -9`` of the core, again and again, while a client creates and deletes.

After every restart the store opens and agrees with what the client was
told: a function whose create was answered 201 is there with its code, one
whose delete was answered 200 is gone, and one whose request got no answer
is either fully there (its code runs) or not there at all.
"""

from __future__ import annotations

import http.client
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from e2e.node import Node
from fixtures.build import wat

KILLS = 5
# A request cut off by the kill: no connection, no status line, or a body
# cut short after the status (IncompleteRead). Either way the client was
# told nothing it may rely on.
NO_ANSWER = (OSError, http.client.HTTPException)
CODES = {"fl_hello": wat("fl_hello"), "wasi_hello": wat("wasi_hello")}
OUTPUT = {"fl_hello": {"hello": {"n": 1}}, "wasi_hello": {"echo": {"n": 1}}}


@dataclass
class Model:
    """What the client was told, name by name."""

    present: dict[str, str] = field(default_factory=dict)  # name -> code fixture
    absent: set[str] = field(default_factory=set)
    unsure: dict[str, str] = field(default_factory=dict)  # no answer: either way
    answered: int = 0


def client(node: Node, model: Model, stop: threading.Event, rng: random.Random) -> None:
    """Creates and deletes functions until ``stop``; records every answer in ``model``."""
    index = 0
    while not stop.is_set():
        index += 1
        if model.present and rng.random() < 0.4:
            name = rng.choice(sorted(model.present))
            kind = model.present.pop(name)
            try:
                status, _ = node.request("DELETE", f"/v1/fn/durable/{name}")
            except NO_ANSWER:
                model.unsure[name] = kind
                return
            assert status == 204, status  # FunLess's server answers a delete 204
            model.absent.add(name)
        else:
            name = f"f{index}_{rng.randrange(10**6)}"
            kind = rng.choice(sorted(CODES))
            try:
                status, body = node.upload("durable", name, CODES[kind])
            except NO_ANSWER:
                model.unsure[name] = kind
                return
            assert status == 201, body
            model.present[name] = kind
        model.answered += 1


def check(node: Node, model: Model) -> None:
    """The restarted node agrees with the model; settles the unsure names."""
    status, body = node.request("GET", "/v1/fn/durable")
    assert status == 200, body
    there = {f["name"] for f in body["data"]["functions"]}
    assert set(model.present) <= there, set(model.present) - there
    assert not (model.absent & there), model.absent & there
    assert there <= set(model.present) | set(model.unsure), there - set(model.present)
    for name in there:
        kind = model.present.get(name) or model.unsure[name]
        assert node.invoke("durable", name, {"n": 1}) == (200, {"data": OUTPUT[kind]}), name
    for name, kind in model.unsure.items():
        if name in there:
            model.present[name] = kind
        else:
            model.absent.add(name)
    model.unsure.clear()


def test_kill_9_of_the_core_loses_nothing_it_confirmed(tmp_path: Path) -> None:
    rng = random.Random(5)
    node = Node(tmp_path / "core").start()
    try:
        assert node.post_json("/v1/fn", {"module": {"name": "durable"}})[0] == 201
        model = Model()
        for _ in range(KILLS):
            stop = threading.Event()
            thread = threading.Thread(target=client, args=(node, model, stop, rng))
            thread.start()
            time.sleep(rng.uniform(0.5, 1.5))
            node.stop(signal.SIGKILL)  # the master and its API processes
            stop.set()
            thread.join(timeout=30)
            assert not thread.is_alive()
            node.start()
            check(node, model)
        print(f"{model.answered} answered, {len(model.present)} there, {len(model.absent)} gone")
        assert model.answered >= KILLS  # the client did get work done between kills
        assert model.present or model.absent
    finally:
        node.stop()
