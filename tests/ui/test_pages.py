"""The dashboard's files as the app serves them: no key, right types, a strict CSP.

These run without a browser, through the app factory and Falcon's ASGI
conductor (``fixtures.asgi.AppDriver``).
"""

from __future__ import annotations

import configparser
import fnmatch
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.asgi import AppDriver
from fixtures.build import PROJECT
from ui import browser

from fless.api._ui import CONTENT_SECURITY_POLICY, shipped_pages

UI_DIR = PROJECT / "fless" / "api" / "ui"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AppDriver]:
    """The app in one lifespan for the whole test: falcon's ``TestClient`` would
    start and stop the platform around each request, and a stopped platform's
    store is closed."""
    driver = AppDriver(tmp_path)
    yield driver
    driver.close()


@pytest.mark.parametrize("path", ["/ui", "/ui/", "/ui/index.html"])
def test_the_page_needs_no_key(client: AppDriver, path: str) -> None:
    result = client.request("GET", path, auth=False)
    assert result.status_code == 200
    assert result.headers["content-type"] == "text/html; charset=utf-8"
    assert result.content == (UI_DIR / "index.html").read_bytes()


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("app.js", "text/javascript; charset=utf-8"),
        ("chart.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
    ],
)
def test_files_have_their_media_types(client: AppDriver, name: str, media_type: str) -> None:
    result = client.request("GET", f"/ui/{name}", auth=False)
    assert result.status_code == 200
    assert result.headers["content-type"] == media_type
    assert result.headers["x-content-type-options"] == "nosniff"
    assert result.content == (UI_DIR / name).read_bytes()


def test_every_answer_has_a_self_only_csp(client: AppDriver) -> None:
    for name in shipped_pages():
        policy = client.request("GET", f"/ui/{name}", auth=False).headers["content-security-policy"]
        assert policy == CONTENT_SECURITY_POLICY
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    for directive in ("script-src", "style-src", "connect-src"):
        assert directives[directive] == "'self'", directive
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_the_page_loads_nothing_from_elsewhere() -> None:
    index = (UI_DIR / "index.html").read_text()
    linked = re.findall(r'(?:src|href)="([^"]+)"', index)
    assert sorted(linked) == ["/ui/app.js", "/ui/style.css"]
    for path in UI_DIR.iterdir():
        text = path.read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), path.name
        assert "@import" not in text, path.name
        assert not re.search(r"\.(inner|outer)HTML|insertAdjacentHTML|document\.write", text)
    # The script does not trust the API's text as markup: no inline handlers either.
    assert not re.search(r"\son[a-z]+=", index)


def test_unknown_files_and_other_methods_are_refused(client: AppDriver) -> None:
    missing = client.request("GET", "/ui/secret.txt", auth=False)
    assert missing.status_code == 404
    assert missing.json == {"errors": {"detail": "the dashboard has no file 'secret.txt'"}}
    assert client.request("GET", "/ui/../v1/nodes", auth=False).status_code == 404
    posted = client.request("POST", "/ui/", auth=False)
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    assert client.request("HEAD", "/ui/app.js", auth=False).status_code == 200


def test_the_api_still_needs_a_key(client: AppDriver) -> None:
    # Only /ui and what is under it is open; a path that merely starts alike is not.
    for path in ("/uix", "/v1/fn", "/v1/nodes"):
        result = client.request("GET", path, auth=False)
        assert result.status_code == 401, path


def test_the_wheel_ships_every_file() -> None:
    config = configparser.ConfigParser()
    config.read(PROJECT / "setup.cfg")
    patterns = [p.strip() for p in config["options.package_data"]["fless.api"].split(",")]
    for path in UI_DIR.iterdir():
        relative = f"ui/{path.name}"
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"{relative} is not packaged"
    assert set(shipped_pages()) == {p.name for p in UI_DIR.iterdir()}


def test_a_missing_browser_fails_as_root_with_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", tmp_path / "chromium")
    outcome = pytest.fail.Exception if os.geteuid() == 0 else pytest.skip.Exception
    with pytest.raises(outcome) as raised:
        browser.require_browser()
    assert "sh scripts/ui-deps.sh" in str(raised.value)
    assert "apt-get install chromium chromium-driver" in str(raised.value)
