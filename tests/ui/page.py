"""What the browser tests do with the dashboard: wait for it, read it, log in."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from e2e.node import Node
    from selenium.webdriver.remote.webdriver import WebDriver

WAIT_S = 30.0  # a bound on waiting for the page, not a measure of it


def wait_for(driver: WebDriver, condition: Callable[[WebDriver], Any], what: str) -> Any:
    """Waits up to ``WAIT_S`` for ``condition`` to be truthy; fails saying ``what`` never came."""
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S, poll_frequency=0.1).until(condition)
    except Exception as exc:
        raise AssertionError(f"{what} never appeared; the page said: {page_text(driver)}") from exc


def page_text(driver: WebDriver) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def text_of(driver: WebDriver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def says(element_id: str, words: str) -> Callable[[WebDriver], str]:
    """A wait condition: the element's text once it contains ``words``."""

    def check(driver: WebDriver) -> str:
        text = text_of(driver, element_id)
        return text if words in text else ""

    return check


def visible(driver: WebDriver, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(driver.find_element(By.ID, element_id).is_displayed())


def log_in(driver: WebDriver, node: Node, key: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{node.url}/ui")
    field = wait_for(driver, lambda d: d.find_element(By.ID, "key"), "the key field")
    field.clear()
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()


def click(driver: WebDriver, selector: str) -> None:
    """Clicks the element ``selector`` finds, once there is one; a refresh that
    replaces it between finding and clicking makes it try again."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(d: WebDriver) -> bool:
        try:
            found = d.find_elements(By.CSS_SELECTOR, selector)
            if not found:
                return False
            found[0].click()
            return True
        except StaleElementReferenceException:
            return False

    wait_for(driver, attempt, selector)


def confirm(driver: WebDriver, words: str) -> str:
    """Says yes to the page's confirmation once it asks; what it asked.

    Args:
        words: what the question must contain.
    """
    from selenium.webdriver.common.by import By

    asked = wait_for(
        driver, lambda d: visible(d, "confirm") and text_of(d, "confirm-text"), "a question"
    )
    assert words in asked, asked
    driver.find_element(By.ID, "confirm-yes").click()
    wait_for(driver, lambda d: not visible(d, "confirm"), "the question closing")
    return str(asked)


def cells(driver: WebDriver, selector: str) -> list[str] | None:
    """The text of each cell of the row ``selector`` finds, read in one go (a
    refresh may replace the row between two reads); None when there is none."""
    found = driver.execute_script(
        "const row = document.querySelector(arguments[0]);"
        "return row && Array.from(row.querySelectorAll('th, td'), (c) => c.innerText.trim());",
        selector,
    )
    return None if found is None else [str(text) for text in found]
