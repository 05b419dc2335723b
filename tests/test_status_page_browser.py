"""The status page as an admin sees it: Debian's Chromium (headless) against a real
server process with `--http-listen`, one browser and one server for the module; every page
visited is saved as a screenshot under the test's temporary folder and checked not blank."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.chrome.webdriver import WebDriver

from tests.browser import (
    PageServer,
    open_browser,
    running,
    screenshot,
    start_page_server,
    wait_for_text,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PageServer]:
    folder = tmp_path_factory.mktemp("server")
    with running(start_page_server(folder / "data")) as started:
        yield started


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = open_browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def test_the_browser_shows_the_metrics_the_listener_serves(
    server: PageServer, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(server.url("/metrics"))
    text = wait_for_text(browser, "officestatus_seats")
    assert "officestatus_users" in text
    screenshot(browser, tmp_path / "metrics.png")


def test_a_blank_page_is_told_from_a_drawn_one(browser: WebDriver, tmp_path: Path) -> None:
    browser.get("about:blank")
    with pytest.raises(AssertionError, match="looks blank"):
        screenshot(browser, tmp_path / "blank.png")
