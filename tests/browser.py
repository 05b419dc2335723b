"""The status page in a real browser: Debian's Chromium, headless, driven by Selenium
through Debian's ChromeDriver, against a real `officestatus-server --http-listen` process.

Nothing here downloads anything: the driver's path is given (no Selenium Manager), and
Chromium starts with a fresh profile and the flags that keep it off the network (no
updates, no sync, no background requests). `./scripts/check` installs both when missing.
"""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

from officestatus_server.config import ServerConfig
from scripts.processes import server_command

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
# Headless, and nothing of Chromium's own traffic (updates, sync, field trials, QUIC
# probes), which a closed network refuses many times a start.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)
WINDOW = (1280, 900)
# How long a page may take to show what a test waits for.
WAIT_SECONDS = 10.0
# What a wait retries on: the page was replaced while it was read (a form just posted).
_PAGE_CHANGED = (NoSuchElementException, StaleElementReferenceException)
_HTTP = re.compile(r"\b(https?)://127\.0\.0\.1:(\d+)/")
_LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
_BANNER_END = "licensing:"
ADMIN_COMMAND = str(Path(sys.executable).parent / "officestatus-admin")


def open_browser(profile: Path, window: tuple[int, int] = WINDOW) -> WebDriver:
    """Chromium, headless, with a fresh profile in `profile`."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        raise RuntimeError(
            f"the browser tests need {' and '.join(missing)}: ./scripts/check installs them"
            " (as root), or run: sudo apt-get install chromium chromium-driver"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in _FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={window[0]},{window[1]}")
    options.add_argument(f"--user-data-dir={profile}")
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


@dataclass
class PageServer:
    """A real server process with its HTTP listener (the status page) on a free port."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    log: Path
    # http://127.0.0.1:PORT, no trailing slash.
    base: str
    # The gRPC address, HOST:PORT.
    address: str

    @property
    def token(self) -> str:
        """The admin token, as the admin pastes it into the sign-in form."""
        return ServerConfig(data_dir=self.data_dir).token_path.read_text().strip()

    def url(self, path: str = "/") -> str:
        return self.base + path

    def admin(self, *argv: str) -> dict[str, Any]:
        """`officestatus-admin --json ARGV` against this server: its JSON document (an
        error's too, under "error")."""
        where = ("--address", self.address, "--data-dir", str(self.data_dir))
        done = subprocess.run(
            [ADMIN_COMMAND, "--json", *where, *argv],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        document: dict[str, Any] = json.loads(done.stdout)
        return document

    def stop(self, timeout: float = 20) -> tuple[int, str]:
        """SIGTERM, wait; the exit code and everything it printed."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        return code, self.log.read_text()


def start_page_server(data_dir: Path, *extra: str, timeout: float = 30) -> PageServer:
    """Start the server on free ports (gRPC and `--http-listen`), its output in a file
    beside the data directory (so that no unread pipe can stall it while a browser test
    runs), and wait for its whole banner."""
    log = data_dir.parent / f"{data_dir.name}-server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(data_dir, "--http-listen", "127.0.0.1:0", *extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text()
        lines = text.splitlines()
        if any(line.startswith(_BANNER_END) for line in lines):
            break
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
            raise RuntimeError(f"server did not start (exit {process.returncode}):\n{text}")
        time.sleep(0.05)
    http, grpc = _HTTP.search(text), _LISTENING.search(text)
    assert http is not None, text
    assert grpc is not None, text
    base = f"{http.group(1)}://127.0.0.1:{http.group(2)}"
    return PageServer(process, data_dir, log, base, f"127.0.0.1:{grpc.group(1)}")


@contextlib.contextmanager
def running(server: PageServer) -> Iterator[PageServer]:
    """The server while the block runs; then stopped, and it must have stopped cleanly."""
    try:
        yield server
    finally:
        code, output = server.stop()
    assert code == 0, output
    assert "Traceback" not in output, output


def wait_for(driver: WebDriver, css: str, timeout: float = WAIT_SECONDS) -> WebElement:
    """The first element matching `css`, once the page shows it."""

    def first(d: WebDriver) -> WebElement | Literal[False]:
        found = d.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found else False

    try:
        found = WebDriverWait(driver, timeout, ignored_exceptions=_PAGE_CHANGED).until(first)
    except TimeoutException:
        raise AssertionError(
            f"no {css!r} on {driver.current_url} within {timeout} s; the page says:\n"
            + _body(driver)
        ) from None
    return found


def _body(driver: WebDriver) -> str:
    try:
        return str(driver.find_element(By.TAG_NAME, "body").text)
    except WebDriverException as exc:
        # Chromium's way of saying the body found was the page before a navigation: a
        # stale element, retried by the waits like one.
        if "does not belong to the document" in str(exc):
            raise StaleElementReferenceException(str(exc)) from exc
        raise


def wait_for_text(driver: WebDriver, text: str, timeout: float = WAIT_SECONDS) -> str:
    """The page's text, once it contains `text`."""
    try:
        return str(
            WebDriverWait(driver, timeout, ignored_exceptions=_PAGE_CHANGED).until(
                lambda d: text in _body(d) and _body(d)
            )
        )
    except TimeoutException:
        raise AssertionError(
            f"{text!r} not on {driver.current_url} within {timeout} s; the page says:\n"
            + _body(driver)
        ) from None


def sign_in(driver: WebDriver, server: PageServer) -> None:
    """Open the page, be sent to the sign-in form, paste the admin token and submit."""
    driver.get(server.url("/"))
    field = wait_for(driver, "form input[type=password], form input[name=token]")
    field.clear()
    field.send_keys(server.token)
    form = field.find_element(By.XPATH, "./ancestor::form")
    form.find_element(By.CSS_SELECTOR, "button, input[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS).until(lambda d: "/sign-in" not in d.current_url)


def signed_in(driver: WebDriver, server: PageServer) -> WebDriver:
    """The browser with a session: signed in again only when the page asks for it."""
    driver.get(server.url("/"))
    if "/sign-in" in driver.current_url:
        sign_in(driver, server)
    return driver


def screenshot(driver: WebDriver, path: Path, *, min_colours: int = 8) -> Path:
    """Save what the browser shows as a PNG at `path`, and check that it is a drawn page:
    the window's size and more than a few colours (a blank or an error-less white page has
    one or two)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(path)), path
    with Image.open(path) as image:
        assert image.format == "PNG", path
        width, height = image.size
        assert width >= 200, (path, image.size)
        assert height >= 200, (path, image.size)
        colours = image.convert("RGB").getcolors(maxcolors=min_colours)
    # getcolors gives None when there are more than `maxcolors`.
    assert colours is None, f"{path} looks blank: {len(colours)} colour(s)"
    return path
