"""The dashboard in a real headless Chromium against a real ``fless-node``.

A user logs in with the admin key, sees the node, uploads a Wasm function
built from the repo's WAT through the page's form, invokes it and reads the
result; a wrong key shows the 401. Screenshots go to the test's directory
(or ``FLESS_UI_ARTIFACTS``); with ``FLESS_UPDATE_SCREENSHOT=1`` the final one
also replaces ``docs/img/dashboard.png``.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.node import Node, multipart
from fixtures.build import PROJECT, wat
from ui.browser import as_phone, chromium, console_problems, require_browser, save_screenshot
from ui.page import cells as row_cells
from ui.page import click, log_in, says, text_of, visible, wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

DOCS_SCREENSHOT = PROJECT / "docs" / "img" / "dashboard.png"


def worker_of(node: Node, module: str, name: str) -> str:
    """The ``X-Fless-Worker`` of one invocation through the API."""
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=30)
    try:
        conn.request(
            "POST",
            f"/v1/fn/{module}/{name}",
            body=b'{"args": {}}',
            headers={"Authorization": f"Bearer {node.key}", "Content-Type": "application/json"},
        )
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        return str(response.getheader("X-Fless-Worker"))
    finally:
        conn.close()


def test_a_wrong_key_shows_the_401(node: Node, browser: WebDriver, artifacts: Path) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, node, "fl_not_a_key")
    message = wait_for(
        browser,
        says("login-message", "401"),
        "the 401 message",
    )
    assert "invalid API key" in message
    assert not visible(browser, "dashboard")
    assert browser.execute_script("return sessionStorage.getItem('fless.key')") is None
    save_screenshot(browser, artifacts / "dashboard-wrong-key.png")
    assert console_problems(browser) == []

    # A user's key (not the admin's) opens the page too: it uses no admin route.
    status, created = node.post_json("/v1/admin/subjects", {"subject": {"name": "viewer"}})
    assert status == 201
    log_in(browser, node, created["data"]["token"])
    wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard for a user's key")
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-node]"), "the nodes")


def test_log_in_see_the_node_upload_and_invoke(
    node: Node, browser: WebDriver, artifacts: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    body, ctype = multipart(
        [
            ("name", None, b"edge"),
            ("file", "edge.yaml", b"- cam:\n    - workers: [{label: camera}, local]\n"),
        ]
    )
    status, answer = node.request("POST", "/v1/scripts/app", body, {"Content-Type": ctype})
    assert status == 201, answer
    log_in(browser, node, node.key)
    wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard")

    # The APP scripts, with the workers each tag's blocks list.
    row = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-script="edge"]'),
        "the script edge",
    )[0]
    cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "th, td")]
    assert cells == ["edge", "cam", "cam: label camera, local", "Delete"]

    # The members the API lists (each API process of a node with role
    # ``all`` is one), with their role, state, arch and memory.
    _, listed = node.request("GET", "/v1/nodes")
    assert listed["data"]
    for me in listed["data"]:
        row = wait_for(
            browser,
            lambda d, me=me: d.find_elements(By.CSS_SELECTOR, f'tr[data-node="{me["name"]}"]'),
            f"the node {me['name']}",
        )[0]
        cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "th, td")]
        assert cells[:4] == [me["name"], "all", "alive", me["arch"]]
        assert "free of" in cells[4]
        assert cells[5:] == ["local", "—"]  # the worker's name in APP scripts; no labels
        meter = row.find_element(By.CSS_SELECTOR, '[role="meter"]')
        assert float(meter.get_attribute("aria-valuemax")) == me["mem_total"]
        assert 0 < float(meter.get_attribute("aria-valuenow")) <= me["mem_total"]
        assert "plenty" in str(meter.get_attribute("class"))

    # Upload through the form, into a module the page creates.
    code = tmp_path / "fl_hello.wasm"
    code.write_bytes(wat("fl_hello"))
    module = browser.find_element(By.ID, "upload-module")
    module.clear()
    module.send_keys("ui")
    browser.find_element(By.ID, "upload-code").send_keys(str(code))
    # The file's name became the function's; the test names it anyway.
    assert browser.find_element(By.ID, "upload-name").get_attribute("value") == "fl_hello"
    name = browser.find_element(By.ID, "upload-name")
    name.clear()
    name.send_keys("hello")
    browser.find_element(By.ID, "upload-metadata").send_keys('{"memory": 16}')
    browser.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]").click()
    uploaded = wait_for(
        browser,
        says("upload-message", "Uploaded"),
        "the upload's confirmation",
    )
    assert "ui/hello" in uploaded and "16 MiB" in uploaded
    status, stored = node.request("GET", "/v1/fn/ui/hello")
    assert status == 200 and stored["data"]["memory"] == 16
    fn_row = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-function="ui/hello"]'),
        "the function in the functions panel",
    )[0]
    assert "16 MiB" in fn_row.text and "funless" in fn_row.text.lower()
    wait_for(
        browser,
        lambda d: stored["data"]["hash"] in text_of(d, "function-detail"),
        "the function's details",
    )

    # Invoke it through the form and read its answer.
    Select(browser.find_element(By.ID, "invoke-function")).select_by_value("ui/hello")
    args = browser.find_element(By.ID, "invoke-args")
    args.clear()
    args.send_keys('{"who": "browser"}')
    browser.find_element(By.CSS_SELECTOR, "#invoke-form button[type=submit]").click()
    output = wait_for(
        browser,
        lambda d: visible(d, "invoke-output") and text_of(d, "invoke-output"),
        "the invocation's output",
    )
    assert json.loads(output) == {"hello": {"who": "browser"}}
    facts = dict(zip(*[iter(text_of(browser, "invoke-facts").splitlines())] * 2, strict=True))
    assert facts["Status"] == "200" and facts["Attempts"] == "1"
    # The worker that ran it, as the API's X-Fless-Worker header names it.
    assert facts["Worker"] == worker_of(node, "ui", "hello")
    assert facts["Latency"].endswith(" ms (in this browser)")

    # The invocation in the recent ones, under the id the API answered with,
    # and what the function logged in the function's details.
    # Read in one go: a refresh may replace the row between two reads.
    cells = wait_for(
        browser,
        lambda d: row_cells(d, f'tr[data-invocation="{facts["Invocation"]}"]'),
        "the invocation in the recent ones",
    )
    assert cells[1:5] == ["ui/hello", facts["Worker"], "ok", "1"]
    assert cells[5].endswith(" ms")
    logged = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, f'[data-log="{facts["Invocation"]}"]'),
        "the invocation's logs",
    )[0]
    assert "ok" in logged.text
    assert "fl_hello: invoked" in text_of(browser, "detail-logs")

    save_screenshot(browser, artifacts / "dashboard.png")
    if os.environ.get("FLESS_UPDATE_SCREENSHOT") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(artifacts / "dashboard.png", DOCS_SCREENSHOT)
    assert console_problems(browser) == []


def test_the_page_is_live_and_the_key_lasts_the_tab(node: Node, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, node, node.key)
    wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard")

    # A function uploaded by someone else shows up without a reload.
    status, _ = node.upload("_", "live", wat("fl_hello"))
    assert status == 201
    wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-function="_/live"]'),
        "a function uploaded through the API",
    )

    # A reload keeps the session (sessionStorage); logging out forgets the key.
    browser.refresh()
    wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard after a reload")
    assert browser.execute_script("return sessionStorage.getItem('fless.key')") == node.key
    browser.find_element(By.ID, "logout").click()
    wait_for(browser, lambda d: visible(d, "login"), "the login form after logging out")
    assert browser.execute_script("return sessionStorage.getItem('fless.key')") is None
    assert not visible(browser, "dashboard")


def test_an_api_error_shows_its_detail(node: Node, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    status, _ = node.upload("_", "fails", wat("fl_error"))
    assert status == 201
    log_in(browser, node, node.key)
    wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'option[value="_/fails"]'),
        "the function in the invoke form",
    )
    Select(browser.find_element(By.ID, "invoke-function")).select_by_value("_/fails")
    browser.find_element(By.CSS_SELECTOR, "#invoke-form button[type=submit]").click()
    message = wait_for(
        browser,
        says("invoke-message", "422"),
        "the function's error",
    )
    _, body = node.invoke("_", "fails", {})
    assert body["errors"]["detail"] in message
    assert not visible(browser, "invoke-output")
    facts = dict(zip(*[iter(text_of(browser, "invoke-facts").splitlines())] * 2, strict=True))
    assert facts["Status"] == "422"
    wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, f'tr[data-invocation="{facts["Invocation"]}"]'),
        "the failed invocation in the recent ones",
    )[0]
    # The function's own failure, not the platform's: "failed", which opens
    # onto the function's error.
    # Each read is one script: a refresh may replace the row between two reads.
    row = f'tr[data-invocation="{facts["Invocation"]}"]'
    pill = "const b = document.querySelector(arguments[0] + ' .badge');"
    word, tone, outcome = browser.execute_script(
        pill + "return [b.textContent, b.className, b.dataset.outcome];", row
    )
    assert (word, outcome) == ("failed", "function") and "failed" in tone
    wait_for(
        browser,
        lambda d: body["errors"]["detail"] in d.execute_script(pill + "return b.title;", row),
        "the function's error in the pill's title",
    )
    browser.execute_script("document.querySelector(arguments[0] + ' summary').click();", row)
    opened = wait_for(
        browser,
        lambda d: d.execute_script(
            "const p = document.querySelector(arguments[0] + ' details[open] p');"
            "return p && p.innerText;",
            row,
        ),
        "the opened error",
    )
    assert body["errors"]["detail"] in opened

    # A bad name never leaves the page.
    browser.find_element(By.ID, "upload-name").send_keys("no-dashes")
    browser.find_element(By.ID, "upload-code").send_keys(str(PROJECT / "setup.cfg"))
    browser.find_element(By.CSS_SELECTOR, "#upload-form button[type=submit]").click()
    wait_for(browser, says("upload-message", "letters, digits and _"), "the refused name")


def test_a_function_page_shows_its_bindings_and_how_they_fare(
    node: Node, browser: WebDriver, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    # A cron event connects nowhere, so no broker is needed.
    cron = [{"type": "cron", "params": {"schedule": "0 8 * * *"}}]
    body, ctype = multipart(
        [
            ("name", None, b"alarm"),
            ("code", "code.wasm", wat("fl_hello")),
            ("events", None, json.dumps(cron).encode()),
        ]
    )
    status, _ = node.request("POST", "/v1/fn/_", body, {"Content-Type": ctype})
    assert status == 201
    status, _ = node.upload("_", "plain", wat("fl_hello"))
    assert status == 201

    log_in(browser, node, node.key)
    click(browser, 'tr[data-function="_/alarm"] button')
    # Served within a second by one API process; the page shows it at a refresh.
    # Each read is one script: a refresh may replace the row between two reads.
    when, shown_tick = wait_for(
        browser,
        lambda d: d.execute_script(
            "const t = document.querySelector(arguments[0]);"
            "return t && [t.getAttribute('datetime'), t.textContent];",
            '#detail-bindings tr[data-event="0"] td:nth-of-type(5) time',  # Next tick
        ),
        "the cron event's next tick",
    )
    cells = row_cells(browser, '#detail-bindings tr[data-event="0"]')
    assert cells is not None and cells[:4] == ["cron", "0 8 * * * (UTC)", "connected", "—"]
    assert shown_tick
    _, shown = node.request("GET", "/v1/fn/_/alarm")
    expected = datetime.datetime.fromisoformat(shown["data"]["bindings"]["events"][0]["next_tick"])
    tick = datetime.datetime.fromisoformat(str(when))
    assert tick == expected
    assert (tick.hour, tick.minute) == (8, 0)
    assert "outbox: " in text_of(browser, "bindings-outbox")
    assert not browser.find_elements(By.CSS_SELECTOR, "#detail-bindings tr[data-sink]")
    save_screenshot(browser, artifacts / "dashboard-bindings.png")

    # A function without events or sinks has no such section.
    click(browser, 'tr[data-function="_/plain"] button')
    wait_for(browser, says("detail-title", "_/plain"), "the function without bindings")
    assert not visible(browser, "detail-bindings")
    assert "Bindings" not in text_of(browser, "function-detail")
    assert console_problems(browser) == []


def test_a_phone_sees_the_page_without_sideways_scrolling(
    node: Node, tmp_path: Path, artifacts: Path
) -> None:
    require_browser()
    driver = chromium(tmp_path, 1280, 900)
    try:
        as_phone(driver)
        log_in(driver, node, node.key)
        wait_for(driver, lambda d: visible(d, "dashboard"), "the dashboard")
        wait_for(driver, lambda d: text_of(d, "summary"), "the cluster summary")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"the page is {overflow} px wider than a phone"
        save_screenshot(driver, artifacts / "dashboard-phone.png")
    finally:
        driver.quit()
