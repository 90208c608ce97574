"""A worker that dies, as the dashboard shows it: a real core, a real worker
process killed with SIGKILL, and gossip's verdict on it in the Nodes panel.

An alive worker's free-memory bar is green; once the core holds the worker
suspect or dead, the bar turns grey and says the figures are only what the
worker last reported.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.node import Node, WorkerNode, free_port
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
        save_screenshot(browser, artifacts / "dashboard-dead-worker.png")
        assert console_problems(browser) == []
    finally:
        worker.stop()
        core.stop()
