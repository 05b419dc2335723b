"""The status page as an admin sees it: Debian's Chromium (headless) against a real
server process with `--http-listen`, one browser and one server for the module, on a
database of 100,000 users (50 enabled, 50 seats: full). Every page visited is saved as a
screenshot under the test's temporary folder and checked not blank. The tests run in
order and build on each other, as one admin's visit does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from officestatus_client import SeatClient
from scripts.benchmark.database import prepare_database
from scripts.screenshot_status_page import WIDTH as SCREENSHOT_WIDTH
from scripts.screenshot_status_page import make as make_screenshot
from tests.browser import (
    PageServer,
    open_browser,
    running,
    screenshot,
    sign_in,
    signed_in,
    start_page_server,
    wait_for,
    wait_for_text,
)
from tests.support import Vendor

USERS = 100_000
SEATS = 50  # two licenses of 25


@pytest.fixture(scope="module")
def vendor() -> Vendor:
    return Vendor()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, vendor: Vendor) -> Iterator[PageServer]:
    folder = tmp_path_factory.mktemp("server")
    data = folder / "data"
    asyncio.run(prepare_database(data, vendor.signing, USERS, 2, SEATS // 2, SEATS))
    public = vendor.write_public_key(folder)
    with running(start_page_server(data, "--vendor-key", str(public))) as started:
        yield started


@pytest.fixture
def page(browser: WebDriver, server: PageServer) -> WebDriver:
    """The module's browser, signed in (so that one test's failure does not fail the
    rest for want of a session)."""
    return signed_in(browser, server)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    driver = open_browser(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


def test_a_blank_page_is_told_from_a_drawn_one(browser: WebDriver, tmp_path: Path) -> None:
    browser.get("about:blank")
    with pytest.raises(AssertionError, match="looks blank"):
        screenshot(browser, tmp_path / "blank.png")


def test_a_wrong_token_is_not_accepted_and_the_right_one_shows_the_overview(
    server: PageServer, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(server.url("/"))
    assert browser.current_url.startswith(server.url("/sign-in")), browser.current_url
    wait_for(browser, "input[type=password]").send_keys("not-the-token")
    browser.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait_for_text(browser, "Token not accepted.")
    screenshot(browser, tmp_path / "sign-in-refused.png")

    sign_in(browser, server)
    assert browser.current_url == server.url("/")
    # The gauge's numbers, as the admin reads them, and the same in words.
    assert wait_for(browser, "[data-field=users_enabled]").text == str(SEATS)
    assert browser.find_element(By.CSS_SELECTOR, "[data-field=seats_total]").text == str(SEATS)
    gauge = browser.find_element(By.CSS_SELECTOR, ".gauge-box svg title")
    assert gauge.get_attribute("textContent") == f"{SEATS} of {SEATS} seats used"
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "BENCH-00001" in page
    assert "BENCH-00002" in page
    screenshot(browser, tmp_path / "overview.png")


def _user_row(server: PageServer, browser: WebDriver, name: str) -> WebElement:
    """The row of `name` among the users found by searching for it."""
    browser.get(server.url("/users"))
    field = wait_for(browser, "input[name=q]")
    field.clear()
    field.send_keys(name)
    field.submit()
    wait_for_text(browser, f"whose name contains “{name}”")
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert [row.find_element(By.TAG_NAME, "td").text for row in rows] == [name]
    return rows[0]


@pytest.mark.usefixtures("page")
def test_a_user_is_found_among_100000_and_enabling_one_more_is_refused_as_the_cli_does(
    server: PageServer, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(server.url("/users"))
    assert "of 100,000 users" in wait_for_text(browser, "100,000")
    screenshot(browser, tmp_path / "users.png")

    row = _user_row(server, browser, "user054321")
    assert "disabled" in row.text
    assert "1 to 1 of 1 user" in browser.find_element(By.TAG_NAME, "body").text
    screenshot(browser, tmp_path / "users-found.png")

    cli = server.admin("user", "enable", "user054321")["error"]["message"]
    row.find_element(By.CSS_SELECTOR, "button").click()
    assert wait_for(browser, "[role=alert]").text == cli
    screenshot(browser, tmp_path / "users-refused.png")
    assert "disabled" in _user_row(server, browser, "user054321").text


@pytest.mark.usefixtures("page")
def test_disabling_a_user_frees_a_seat_and_enabling_them_takes_it_again(
    server: PageServer, browser: WebDriver, tmp_path: Path
) -> None:
    _user_row(server, browser, "user000010").find_element(By.CSS_SELECTOR, "button").click()
    wait_for_text(browser, "Disabled 1 user: user000010.")
    assert "disabled" in _user_row(server, browser, "user000010").text
    browser.get(server.url("/"))
    assert wait_for(browser, "[data-field=users_enabled]").text == str(SEATS - 1)

    _user_row(server, browser, "user000010").find_element(By.CSS_SELECTOR, "button").click()
    wait_for_text(browser, "Enabled 1 user: user000010.")
    screenshot(browser, tmp_path / "users-enabled.png")
    browser.get(server.url("/"))
    assert wait_for(browser, "[data-field=users_enabled]").text == str(SEATS)


@pytest.mark.usefixtures("page")
def test_installing_a_pasted_key_adds_its_seats_and_a_bad_one_is_refused_as_the_cli_does(
    server: PageServer, browser: WebDriver, vendor: Vendor, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("this is not a license key\n")
    cli = server.admin("license", "install", str(bad))["error"]["message"]

    browser.get(server.url("/licenses"))
    field = wait_for(browser, "textarea[name=key]")
    field.send_keys(bad.read_text())
    field.find_element(By.XPATH, "./ancestor::form").submit()
    refusal = wait_for(browser, "[role=alert]").text
    assert refusal == cli
    screenshot(browser, tmp_path / "licenses-refused.png")

    field = wait_for(browser, "textarea[name=key]")
    field.clear()
    field.send_keys(vendor.issue(10, license_id="L-BROWSER-10"))
    field.find_element(By.XPATH, "./ancestor::form").submit()
    wait_for_text(browser, "Installed license L-BROWSER-10 (purchased, 10 seats")
    assert "L-BROWSER-10" in browser.find_element(By.TAG_NAME, "table").text
    screenshot(browser, tmp_path / "licenses.png")

    browser.get(server.url("/"))
    gauge = wait_for(browser, ".gauge-box svg title")
    assert gauge.get_attribute("textContent") == f"{SEATS} of {SEATS + 10} seats used"
    assert server.admin("license", "list")  # the CLI sees the same server


@pytest.mark.usefixtures("page")
def test_the_sessions_page_shows_who_is_signed_in(
    server: PageServer, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(server.url("/sessions"))
    wait_for_text(browser, "No one is signed in.")

    async def log_in() -> None:
        async with SeatClient(server.address, "6.0.0") as seat:
            assert (await seat.login("user000007", "PC-RECEPTION")).granted

    asyncio.run(log_in())
    browser.get(server.url("/sessions"))
    row = wait_for(browser, "table tbody tr").text
    assert "user000007" in row
    assert "PC-RECEPTION" in row
    assert "6.0.0 (6.x)" in row
    screenshot(browser, tmp_path / "sessions.png")


@pytest.mark.usefixtures("page")
def test_the_usage_page_draws_its_charts_beside_their_numbers(
    server: PageServer, browser: WebDriver, tmp_path: Path
) -> None:
    browser.get(server.url("/usage"))
    wait_for(browser, "figure svg")
    titles = [
        title.get_attribute("textContent")
        for title in browser.find_elements(By.CSS_SELECTOR, "figure svg > title")
    ]
    assert len(titles) == 2, titles
    assert all(titles), titles
    assert browser.find_element(By.CSS_SELECTOR, "a[href='/usage.csv']").is_displayed()
    assert len(browser.find_elements(By.CSS_SELECTOR, "table tbody tr")) >= 30
    screenshot(browser, tmp_path / "usage.png")


def test_the_readme_screenshot_is_made_by_its_script(tmp_path: Path) -> None:
    made = make_screenshot(tmp_path / "status-page.png")
    with Image.open(made) as image:
        assert image.size[0] == SCREENSHOT_WIDTH
