"""Managing the cluster from the dashboard, in a real Chromium against a real ``fless-node``.

Modules, functions, bindings and APP scripts are created, changed and deleted
through the page's forms and buttons; each change is then read back through
the API, so what is asserted is what the node stored, not what the page
says. Deletes ask first: a "Cancel" changes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from e2e.node import Node, free_port
from fixtures.build import wat
from ui.browser import console_problems, save_screenshot
from ui.page import cells, click, confirm, log_in, says, text_of, visible, wait_for

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver


def fill(driver: WebDriver, element_id: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, element_id)
    field.clear()
    if text:
        field.send_keys(text)


def function_row(driver: WebDriver, shown: str) -> list[str]:
    """The cells of the function ``module/name`` in the Functions panel, once it is there."""
    return list(
        wait_for(
            driver, lambda d: cells(d, f'tr[data-function="{shown}"]'), f"the function {shown}"
        )
    )


def module_names(node: Node) -> list[str]:
    status, body = node.request("GET", "/v1/fn")
    assert status == 200, body
    return [m["name"] for m in body["data"]]


def open_details(driver: WebDriver, element_id: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, element_id)
    if box.get_attribute("open") is None:
        box.find_element(By.TAG_NAME, "summary").click()


def test_modules_and_functions_are_created_updated_and_deleted(
    node: Node, browser: WebDriver, tmp_path: Path, artifacts: Path
) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, node, node.key)
    wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard")

    # A module: refused names never leave the page, a taken one shows the API's 422.
    open_details(browser, "module-box")
    fill(browser, "module-name", "no-dashes")
    click(browser, "#module-form button[type=submit]")
    wait_for(browser, says("manage-message", "letters, digits and _"), "the refused name")
    fill(browser, "module-name", "shop")
    click(browser, "#module-form button[type=submit]")
    wait_for(browser, says("manage-message", "Created module shop"), "the new module")
    assert "shop" in module_names(node)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, '[data-module="shop"]'), "shop")
    fill(browser, "module-name", "shop")
    click(browser, "#module-form button[type=submit]")
    taken = wait_for(browser, says("manage-message", "Failed (422)"), "the API's refusal")
    assert "already exists" in taken

    # A function in it, through the upload form; the default timeout reads "10 s".
    code = tmp_path / "cart.wasm"
    code.write_bytes(wat("fl_hello"))
    fill(browser, "upload-module", "shop")
    browser.find_element(By.ID, "upload-code").send_keys(str(code))
    click(browser, "#upload-form button[type=submit]")
    wait_for(browser, says("upload-message", "Uploaded shop/cart"), "the upload")
    _, before = node.request("GET", "/v1/fn/shop/cart")
    assert before["data"]["timeout"] == 10000
    cells = function_row(browser, "shop/cart")
    assert cells[0] == "cart" and cells[2:4] == ["64 MiB", "10 s"]
    assert cells[1].endswith((" B", " KiB")) and cells[4] == before["data"]["abi"]

    # Update: new code, memory and time cap, from the function's details.
    click(browser, 'tr[data-function="shop/cart"] button')
    wait_for(browser, says("detail-title", "shop/cart"), "the function's details")
    open_details(browser, "update-box")
    assert browser.find_element(By.ID, "update-memory").get_attribute("value") == "64"
    assert browser.find_element(By.ID, "update-timeout").get_attribute("value") == "10"
    new_code = tmp_path / "cart2.wasm"
    new_code.write_bytes(wat("fl_error"))
    browser.find_element(By.ID, "update-code").send_keys(str(new_code))
    fill(browser, "update-memory", "32")
    fill(browser, "update-timeout", "2.5")
    click(browser, "#update-form button[type=submit]")
    updated = wait_for(browser, says("update-message", "Updated shop/cart"), "the update")
    assert "code" in updated and "32 MiB" in updated and "2.5 s" in updated
    _, after = node.request("GET", "/v1/fn/shop/cart")
    assert after["data"]["memory"] == 32 and after["data"]["timeout"] == 2500
    assert after["data"]["hash"] != before["data"]["hash"]
    wait_for(
        browser,
        lambda d: function_row(d, "shop/cart")[2:4] == ["32 MiB", "2.5 s"],
        "the new settings in the table",
    )
    # An update that changes nothing is not sent; a bad number is refused in the page.
    click(browser, "#update-form button[type=submit]")
    wait_for(browser, says("update-message", "nothing to change"), "nothing to change")
    fill(browser, "update-timeout", "-1")
    click(browser, "#update-form button[type=submit]")
    wait_for(browser, says("update-message", "number of seconds"), "the refused time cap")
    fill(browser, "update-timeout", "2.5")

    # A delete asks first; "Cancel" keeps the function.
    click(browser, "#delete-function")
    wait_for(browser, lambda d: visible(d, "confirm"), "the question")
    assert "shop/cart" in text_of(browser, "confirm-text")
    browser.find_element(By.ID, "confirm-no").click()
    wait_for(browser, lambda d: not visible(d, "confirm"), "the question closing")
    assert node.request("GET", "/v1/fn/shop/cart")[0] == 200
    click(browser, "#delete-function")
    confirm(browser, "Delete function shop/cart?")
    wait_for(browser, says("manage-message", "Deleted function shop/cart"), "the delete")
    assert node.request("GET", "/v1/fn/shop/cart")[0] == 404
    wait_for(
        browser,
        lambda d: not d.find_elements(By.CSS_SELECTOR, 'tr[data-function="shop/cart"]'),
        "the function gone from the table",
    )
    assert not visible(browser, "function-detail")

    # The module, now empty; the default module has no delete button.
    assert not browser.find_elements(By.CSS_SELECTOR, '[data-delete-module="_"]')
    click(browser, '[data-delete-module="shop"]')
    confirm(browser, "Delete the empty module shop?")
    wait_for(browser, says("manage-message", "Deleted module shop"), "the module's delete")
    assert "shop" not in module_names(node)
    save_screenshot(browser, artifacts / "dashboard-manage.png")
    assert console_problems(browser) == []


def test_bindings_are_added_and_removed_and_their_errors_shown(
    node: Node, browser: WebDriver
) -> None:
    from selenium.webdriver.common.by import By

    assert node.upload("_", "ticker", wat("fl_hello"))[0] == 201
    log_in(browser, node, node.key)
    click(browser, 'tr[data-function="_/ticker"] button')
    wait_for(browser, says("detail-title", "_/ticker"), "the function's details")
    assert not visible(browser, "detail-bindings")
    open_details(browser, "update-box")

    # Two cron events, and two HTTP sinks: one whose host takes a connection
    # (this node), one where nothing listens, which the API refuses (207).
    crons = [
        {"type": "cron", "params": {"schedule": "0 8 * * *"}},
        {"type": "cron", "params": {"schedule": "30 9 * * 1", "timezone": "Europe/Rome"}},
    ]
    nowhere = f"http://127.0.0.1:{free_port()}/hook"
    # Markup in what the API echoes back stays text.
    hook = f"{node.url}/hook?as=<img/src=x/onerror=document.title='owned'>"
    sinks = [
        {"type": "http", "params": {"url": hook}},
        {"type": "http", "params": {"url": nowhere}},
    ]
    fill(browser, "update-events", json.dumps(crons))
    fill(browser, "update-sinks", json.dumps(sinks))
    click(browser, "#update-form button[type=submit]")
    said = wait_for(browser, says("update-message", "Updated _/ticker"), "the update")
    assert "Not bound: sink 2 refused: cannot connect to 127.0.0.1" in said
    assert "error" in str(browser.find_element(By.ID, "update-message").get_attribute("class"))
    _, shown = node.request("GET", "/v1/fn/_/ticker")
    assert [e["params"]["schedule"] for e in shown["data"]["events"]] == ["0 8 * * *", "30 9 * * 1"]
    assert [s["params"]["url"] for s in shown["data"]["sinks"]] == [hook]
    wait_for(
        browser,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#detail-bindings tr[data-event]")) == 2,
        "both events",
    )
    # Read in one go each: a refresh may replace the rows between two reads.
    event = cells(browser, '#detail-bindings tr[data-event="1"]')
    assert event is not None and event[1] == "30 9 * * 1 (Europe/Rome)"
    sink = cells(browser, '#detail-bindings tr[data-sink="0"]')
    assert sink is not None and sink[1] == hook
    assert not browser.find_elements(By.CSS_SELECTOR, "#detail-bindings img")
    assert browser.title != "owned"

    # A list that is not JSON never leaves the page.
    fill(browser, "update-events", "[{")
    click(browser, "#update-form button[type=submit]")
    wait_for(browser, says("update-message", "not valid JSON"), "the refused events")
    fill(browser, "update-events", "")

    # Remove the first event: the other stays.
    click(browser, '#detail-bindings button[data-remove-events="0"]')
    confirm(browser, "Remove the event cron 0 8 * * * (UTC) from _/ticker?")
    wait_for(browser, says("bindings-message", "Removed the event"), "the removal")
    _, shown = node.request("GET", "/v1/fn/_/ticker")
    assert [e["params"]["schedule"] for e in shown["data"]["events"]] == ["30 9 * * 1"]
    wait_for(
        browser,
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#detail-bindings tr[data-event]")) == 1,
        "one event left",
    )

    # The last sink and the last event: none left, and no Bindings section.
    click(browser, '#detail-bindings button[data-remove-sinks="0"]')
    confirm(browser, f"Remove the sink http {hook} from _/ticker?")
    wait_for(browser, says("bindings-message", "Removed the sink"), "the sink's removal")
    click(browser, '#detail-bindings button[data-remove-events="0"]')
    confirm(browser, "Remove the event cron 30 9 * * 1")
    wait_for(browser, lambda d: not visible(d, "detail-bindings"), "no bindings left")
    _, shown = node.request("GET", "/v1/fn/_/ticker")
    assert not shown["data"].get("events") and not shown["data"].get("sinks")
    assert console_problems(browser) == []


def test_app_scripts_are_added_replaced_and_deleted(node: Node, browser: WebDriver) -> None:
    from selenium.webdriver.common.by import By

    log_in(browser, node, node.key)
    wait_for(browser, lambda d: visible(d, "dashboard"), "the dashboard")
    open_details(browser, "script-box")

    # A script that does not parse: the API's 400 and its reason, in the page.
    fill(browser, "script-name", "zone")
    fill(browser, "script-text", "- cam: [not, blocks\n")
    click(browser, "#script-form button[type=submit]")
    refused = wait_for(browser, says("script-message", "Failed (400)"), "the refused script")
    assert node.request("GET", "/v1/scripts/app/zone")[0] == 404
    assert len(refused) > len("Failed (400): ")

    fill(browser, "script-text", "- cam:\n    - workers: [{label: camera}]\n")
    click(browser, "#script-form button[type=submit]")
    wait_for(browser, says("script-message", "Added the script zone"), "the new script")
    status, body = node.request("GET", "/v1/scripts/app/zone")
    assert status == 200 and list(body["data"]["script"]["tags"]) == ["cam"]
    row = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, 'tr[data-script="zone"]'),
        "the script in its table",
    )[0]
    assert "cam: label camera" in row.text

    # The same name again replaces it (PUT): its id stays.
    fill(browser, "script-name", "zone")
    fill(browser, "script-text", "- gate:\n    - workers: '*'\n")
    click(browser, "#script-form button[type=submit]")
    wait_for(browser, says("script-message", "Replaced the script zone"), "the replaced script")
    status, replaced = node.request("GET", "/v1/scripts/app/zone")
    assert status == 200 and list(replaced["data"]["script"]["tags"]) == ["gate"]
    assert replaced["data"]["id"] == body["data"]["id"]

    click(browser, 'button[data-delete-script="zone"]')
    confirm(browser, "Delete the APP script zone?")
    wait_for(browser, says("script-message", "Deleted the script zone"), "the delete")
    assert node.request("GET", "/v1/scripts/app/zone")[0] == 404
    wait_for(
        browser,
        lambda d: not d.find_elements(By.CSS_SELECTOR, 'tr[data-script="zone"]'),
        "the script gone",
    )
    assert console_problems(browser) == []


def test_a_long_name_stays_on_one_line_with_all_of_it_in_the_title(
    node: Node, browser: WebDriver
) -> None:

    name = "a_function_with_a_name_much_longer_than_its_column_" * 3
    assert node.upload("_", name, wat("fl_hello"))[0] == 201
    log_in(browser, node, node.key)
    function_row(browser, f"_/{name}")
    title, text, cut, height, line, overflow = browser.execute_script(
        "const b = document.querySelector(arguments[0]); const s = getComputedStyle(b);"
        "return [b.title, b.textContent, b.scrollWidth > b.clientWidth,"
        " b.getBoundingClientRect().height,"
        " parseFloat(s.lineHeight) || parseFloat(s.fontSize) * 1.5, s.textOverflow];",
        f'tr[data-function="_/{name}"] button',
    )
    assert title == f"_/{name}"
    assert text == name  # the whole name is the button's text, cut only on screen
    assert cut and overflow == "ellipsis"
    assert height < 1.5 * line, f"the name takes {height} px, more than one line of {line} px"
