"""A worker that dies, as the dashboard shows it: a real core, a real worker
process killed with SIGKILL, and gossip's verdict on it in the Nodes panel.

An alive worker's free-memory bar is green; once the core holds the worker
suspect or dead, the bar turns grey and says the figures are only what the
worker last reported. A call that then finds no worker is the platform's
failure, shown red, not the amber "failed" of a function that ran.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.node import Node, WorkerNode, free_port
from e2e.node import wait_for as node_wait_for
from fixtures.build import wat
from ui.browser import console_problems, save_screenshot
from ui.page import log_in, visible, wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

# The page's colours (style.css): --ok for a bar with room, --stale for a member not alive.
GREEN = "rgb(17, 99, 41)"
GREY = "rgb(138, 147, 157)"


def bar_of(driver: WebDriver, member: str) -> dict[str, str] | None:
    """The member's state word, bar class, fill colour and label, read in one go."""
    found = driver.execute_script(
        "const row = Array.from(document.querySelectorAll('tr[data-node]'))"
        "  .find((r) => r.dataset.node === arguments[0]);"
        "if (!row) return null;"
        "const bar = row.querySelector('[role=meter]');"
        "return {state: row.querySelector('.badge').textContent, bar: bar.className,"
        " fill: getComputedStyle(bar.querySelector('.fill')).backgroundColor,"
        " label: bar.parentElement.innerText};",
        member,
    )
    return None if found is None else {k: str(v) for k, v in found.items()}


def test_a_dead_worker_gets_a_grey_bar_and_its_state(
    tmp_path: Path, browser: WebDriver, artifacts: Path
) -> None:
    gossip_port = free_port()
    core = Node(tmp_path / "core", None, "--role", "core", "--gossip-port", str(gossip_port))
    core.start()
    worker = WorkerNode(
        tmp_path / "w",
        seeds=f"127.0.0.1:{gossip_port}",
        key_dir=tmp_path / "core" / "keys",
        memory_mib=256,
    ).start()
    try:
        # Uploaded while the worker lives: an upload needs a worker to compile it.
        node_wait_for(
            lambda: core.upload("_", "stranded", wat("fl_hello"))[0] == 201,
            30,
            "a worker to take the code",
        )
        log_in(browser, core, core.key)
        wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard")
        alive = wait_for(
            browser,
            lambda d: (b := bar_of(d, worker.name)) and b["state"] == "alive" and b,
            "the worker, alive",
        )
        assert "plenty" in alive["bar"] and alive["fill"] == GREEN
        assert alive["label"].startswith("256 MiB free of 256 MiB"), alive

        worker.stop(signal.SIGKILL)
        gone = wait_for(
            browser,
            lambda d: (b := bar_of(d, worker.name)) and b["state"] != "alive" and b,
            "the worker, no longer alive",
        )
        assert gone["state"] in ("suspect", "dead")
        assert "stale" in gone["bar"] and gone["fill"] == GREY
        assert gone["label"].startswith(f"{gone['state']}: last reported 256 MiB free of 256 MiB")

        # A call with no worker left fails on the platform's side: red, and
        # not the "failed" of a function that ran.
        status, answer = core.invoke("_", "stranded", {})
        assert status in (502, 503), answer
        _, recent = core.request("GET", "/v1/invocations?limit=1")
        call = recent["data"][0]
        assert call["outcome"] in ("no_worker", "lost")
        pill = wait_for(
            browser,
            lambda d: d.execute_script(
                "const b = document.querySelector(arguments[0]);"
                "return b && [b.textContent, b.className, !!b.closest('details')];",
                f'tr[data-invocation="{call["id"]}"] .badge',
            ),
            "the call in the recent ones",
        )
        word = {"no_worker": "no worker", "lost": "worker lost"}[call["outcome"]]
        assert pill == [word, "badge bad", False]
        save_screenshot(browser, artifacts / "dashboard-dead-worker.png")
        assert console_problems(browser) == []
    finally:
        worker.stop()
        core.stop()
