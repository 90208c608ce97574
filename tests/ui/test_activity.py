"""The dashboard's activity chart and cache column, from a real node's own answers.

The chart is drawn from ``/metrics`` polled by the page: the calls it counts
between its polls must add up to the calls the test made, and the node's
own counter must agree. A node with metrics off gets a chart that says why.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from e2e.node import Node
from fixtures.build import wat
from ui.browser import console_problems, save_screenshot
from ui.page import cells, log_in, says, visible, wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CALLS = 7


def invocations_counted(node: Node) -> float:
    """The node's ``fless_invocations_total``, all functions and outcomes."""
    status, text = node.request("GET", "/metrics")
    assert status == 200, text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in str(text).splitlines()
        if line.startswith("fless_invocations_total")
    )


def test_the_chart_counts_the_calls_made_and_the_cache_column_fills(
    node: Node, browser: WebDriver, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    assert node.upload("_", "charted", wat("fl_hello"))[0] == 201
    log_in(browser, node, node.key)
    wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard")
    # The first poll of /metrics is the baseline the points count from.
    wait_for(
        browser, lambda d: d.find_element(By.ID, "activity").get_attribute("data-points"), "a poll"
    )
    before = invocations_counted(node)
    for n in range(CALLS):
        assert node.invoke("_", "charted", {"n": n})[0] == 200
    wait_for(
        browser,
        lambda d: d.find_element(By.ID, "activity").get_attribute("data-calls") == str(CALLS),
        f"{CALLS} calls in the chart",
    )
    assert invocations_counted(node) == before + CALLS

    # The line has a point above zero, and the table the same points.
    line = browser.find_element(By.CSS_SELECTOR, "#chart-rate polyline")
    points = [tuple(map(float, p.split(","))) for p in str(line.get_attribute("points")).split()]
    assert points and min(y for _, y in points) < 120  # the SVG's y grows downwards
    assert browser.find_element(By.CSS_SELECTOR, "#chart-latency polyline")
    assert "peak" in browser.find_element(By.ID, "chart-rate-peak").text
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-rate line.dot")
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#chart-body tr'),"
        " (r) => Array.from(r.children, (c) => c.textContent));"
    )
    assert sum(int(r[1]) for r in rows) == CALLS
    busy = [r for r in rows if int(r[1]) > 0]
    assert busy and all(r[3].endswith(" ms") for r in busy)

    # The code is cached where the API says (the upload pushed it, the calls
    # ran it), in the table and not only in the details.
    _, shown = node.request("GET", "/v1/fn/_/charted")
    holders = shown["data"]["cached_on"]
    assert holders
    wait_for(
        browser,
        lambda d: (cells(d, 'tr[data-function="_/charted"]') or [""])[-1] == ", ".join(holders),
        "the workers holding the code",
    )
    save_screenshot(browser, artifacts / "dashboard-activity.png")
    assert console_problems(browser) == []


# What a node's /metrics may hold besides the lines the chart reads: help and
# type lines, other families, labels with braces and spaces, +Inf buckets,
# timestamps, a value that is not a number.
EXPOSITION = """\
# HELP fless_invocations_total Invocations through this core.
# TYPE fless_invocations_total counter
fless_invocations_total{module="_",function="a",outcome="ok"} 3.0
fless_invocations_total{module="_",function="b",outcome="function"} 2.0 1700000000000
fless_invocations_created{module="_",function="a",outcome="ok"} 1.7e+09
fless_invocations_total{module="m",function="c",outcome="x} y"} 5.0
fless_invoke_seconds_bucket{le="+Inf"} 10.0
fless_invoke_seconds_sum 0.5
fless_invoke_seconds_count 10.0
fless_invoke_seconds_count_not_this 99
fless_other_total NaN
"""


def test_the_chart_reads_the_exposition_format_and_survives_a_restart(
    node: Node, browser: WebDriver
) -> None:
    """chart.js itself, run in the browser on text a node could serve."""
    browser.get(f"{node.url}/ui")
    result = browser.execute_async_script(
        "const [text, done] = arguments;"
        "import('/ui/chart.js').then((m) => {"
        "  const totals = m.metricTotals(text);"
        "  let chart = m.withPoint({last: null, points: []}, totals, 1000);"
        "  const more = {...totals, calls: totals.calls + 20, seconds: totals.seconds + 0.2,"
        "    timed: totals.timed + 20};"
        "  chart = m.withPoint(chart, more, 1010);"
        "  const grown = chart.points.slice();"
        "  chart = m.withPoint(chart, {...totals, calls: 1, timed: 1}, 1020);"
        "  const restarted = chart.points.slice();"
        "  chart = m.withPoint(chart, {...totals, calls: 1, timed: 1}, 1020 + 301);"
        "  done({totals, grown, restarted, idle: chart.points});"
        "}, (err) => done({error: String(err)}));",
        EXPOSITION,
    )
    assert "error" not in result, result
    assert result["totals"] == {"calls": 10, "seconds": 0.5, "timed": 10, "found": True}
    (point,) = result["grown"]
    assert point["calls"] == 20 and point["rate"] == 2
    assert abs(point["latency"] - 10.0) < 1e-9  # 0.2 s over 20 calls: 10 ms each
    assert result["restarted"] == []  # the counters went down: a new series
    # Nothing happened for longer than the chart keeps: one idle point, no latency.
    (idle,) = result["idle"]
    assert idle["calls"] == 0 and idle["latency"] is None


@pytest.fixture(scope="module")
def node_without_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("ui-no-metrics") / "data"
    running = Node(data, env={"FLESS_API_METRICS": "false"}).start()
    yield running
    running.stop()


def test_a_node_without_metrics_says_why_there_is_no_chart(
    node_without_metrics: Node, browser: WebDriver
) -> None:
    log_in(browser, node_without_metrics, node_without_metrics.key)
    said = wait_for(browser, says("chart-message", "No chart"), "why there is no chart")
    assert "metrics are off on this node (set api.metrics = true)" in said
    # The rest of the page works.
    wait_for(browser, lambda d: cells(d, "tr[data-node]"), "the nodes")
    assert console_problems(browser) == []
