"""A headless Debian Chromium driven by Selenium through Debian's ChromeDriver.

Nothing is downloaded: Selenium is pointed at ``/usr/bin/chromedriver``, which
keeps its Selenium Manager (the part that fetches drivers) out of the way, and
Chromium runs with its background networking off, since the test machines
have no internet and every connection it tried would be refused.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "sh scripts/ui-deps.sh (as root: apt-get install chromium chromium-driver)"
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # the tests run as root in CI, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


def require_browser() -> None:
    """Fails (as root, where the suite installs its own tools) or skips without a browser."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.fail("selenium is missing; install the test extras: pip install -e '.[test]'")
    if not missing:
        return
    message = f"{' and '.join(missing)} missing; install with: {INSTALL}"
    if os.geteuid() == 0:
        pytest.fail(message)
    pytest.skip(message)


def chromium(profile: Path, width: int, height: int) -> WebDriver:
    """A new headless Chromium with an empty profile in ``profile``.

    Args:
        profile: a fresh directory for the browser's profile and ChromeDriver's log.
        width: the window's width in CSS pixels.
        height: the window's height in CSS pixels.

    Returns:
        The driver; the caller quits it.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile / 'chromium'}")
    options.add_argument(f"--window-size={width},{height}")
    # The page's console (script errors, CSP refusals) for the tests to read.
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    log = profile / "chromedriver.log"
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(log))
    return webdriver.Chrome(options=options, service=service)


def console_problems(driver: WebDriver) -> list[str]:
    """What the page's console said about refused content or uncaught errors.

    An API answer of 401 or 404 is logged by Chromium as a failed resource:
    the page expects those, so they are not problems.
    """
    entries: list[dict[str, Any]] = driver.get_log("browser")
    return [
        str(entry["message"])
        for entry in entries
        if "Content Security Policy" in str(entry["message"])
        or "Uncaught" in str(entry["message"])
        or "SyntaxError" in str(entry["message"])
    ]


def as_phone(driver: WebDriver, width: int = 390, height: int = 844) -> None:
    """Makes the page see a phone's screen (a desktop window cannot be this narrow)."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": True},
    )


def save_screenshot(driver: WebDriver, path: Path) -> Path:
    """A screenshot of the whole page, not only what the window shows, as PNG."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
