"""The status page over HTTP, without a browser, against a real `officestatus-server
--http-listen` process: every page needs the sign-in (else 303 to /sign-in), a wrong
token is refused with "Token not accepted." and slowed, every POST needs the session's
CSRF token (else 403 and nothing changed), and every answer carries the security
headers."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from officestatus_client import AdminClient
from officestatus_server.http.web import CONTENT_SECURITY_POLICY
from tests.process import ServerProcess, start_server_process
from tests.support import Vendor

TIMEOUT = aiohttp.ClientTimeout(total=30)
_PAGE = re.compile(r"^status page: (https?://127\.0\.0\.1:\d+)/ ", re.M)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    """A running server with its status page."""

    server: ServerProcess
    base: str
    token: str
    vendor: Vendor

    def admin(self) -> AdminClient:
        """The admin client, as `officestatus-admin` speaks to the server."""
        return AdminClient(self.server.address, self.token)

    def browser(self) -> aiohttp.ClientSession:
        """A cookie-keeping HTTP client that follows no redirects by itself."""
        return aiohttp.ClientSession(
            self.base, timeout=TIMEOUT, cookie_jar=aiohttp.CookieJar(unsafe=True)
        )


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    vendor = Vendor()
    key = vendor.write_public_key(tmp_path)
    data = tmp_path / "data"
    server = await start_server_process(
        data, "--http-listen", "127.0.0.1:0", "--vendor-key", str(key)
    )
    match = _PAGE.search(server.banner)
    assert match is not None, server.banner
    yield Page(server, match.group(1), (data / "admin-token").read_text().strip(), vendor)
    code, output = await server.stop()
    assert code == 0, output
    assert "Traceback" not in output, output


async def sign_in(session: aiohttp.ClientSession, token: str) -> str:
    """Sign in; the CSRF token of the session's forms."""
    async with session.post("/sign-in", data={"token": token}, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        assert r.headers["Location"] == "/"
    async with session.get("/") as r:
        assert r.status == 200
        found = _CSRF.search(await r.text())
    assert found is not None
    return found.group(1)


def assert_security_headers(response: aiohttp.ClientResponse, cached: bool = False) -> None:
    headers = response.headers
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    if not cached:
        assert headers["Cache-Control"] == "no-store"


GET_PAGES = ["/", "/sessions", "/licenses", "/status.json"]
POST_FORMS = ["/licenses", "/sign-out"]


async def test_every_page_needs_the_sign_in(page: Page) -> None:
    async with page.browser() as browser:
        for path in GET_PAGES:
            async with browser.get(path, allow_redirects=False) as r:
                assert r.status == 303, path
                assert r.headers["Location"].startswith("/sign-in"), path
                assert_security_headers(r)
        for path in POST_FORMS:
            async with browser.post(path, data={"key": "x"}, allow_redirects=False) as r:
                assert r.status == 303, path
                assert r.headers["Location"] == "/sign-in"
        # A made-up session cookie is no session either.
        browser.cookie_jar.update_cookies({"officestatus_session": "forged"})
        async with browser.get("/", allow_redirects=False) as r:
            assert r.status == 303
        # The sign-in sends the admin back where they were going.
        async with browser.get("/sessions", allow_redirects=False) as r:
            assert r.headers["Location"] == "/sign-in?next=%2Fsessions"
        async with browser.get("/sign-in?next=/sessions") as r:
            assert r.status == 200
            text = await r.text()
            assert 'name="next" value="/sessions"' in text
            assert_security_headers(r)
        async with browser.post(
            "/sign-in", data={"token": page.token, "next": "/sessions"}, allow_redirects=False
        ) as r:
            assert r.headers["Location"] == "/sessions"
        # Never to another site.
        async with browser.get("/sign-in?next=//elsewhere.example/", allow_redirects=False) as r:
            assert r.headers["Location"] == "/"
    # /metrics stays open, as before.
    async with (
        aiohttp.ClientSession(timeout=TIMEOUT) as plain,
        plain.get(page.base + "/metrics") as r,
    ):
        assert r.status == 200


async def test_the_session_cookie_and_signing_out(page: Page) -> None:
    async with page.browser() as browser:
        async with browser.post("/sign-in", data={"token": page.token}, allow_redirects=False) as r:
            assert r.status == 303
            cookie = r.headers["Set-Cookie"]
            assert_security_headers(r)
        assert cookie.startswith("officestatus_session=")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "path", "max-age", "samesite"} <= attributes
        assert "SameSite=Strict" in cookie
        assert "Max-Age=28800" in cookie
        assert "secure" not in attributes  # plain HTTP here; HTTPS sets Secure
        async with browser.get("/") as r:
            assert r.status == 200
            csrf = _CSRF.search(await r.text())
        assert csrf is not None
        # Signing out needs the form's token too.
        async with browser.post("/sign-out", data={}, allow_redirects=False) as r:
            assert r.status == 403
        async with browser.get("/", allow_redirects=False) as r:
            assert r.status == 200
        async with browser.post(
            "/sign-out", data={"csrf": csrf.group(1)}, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/sign-in?signed_out=1"
        async with browser.get("/", allow_redirects=False) as r:
            assert r.status == 303


async def test_a_wrong_token_is_not_accepted_and_slowed(page: Page) -> None:
    async with page.browser() as browser:
        timings = []
        for _ in range(3):
            started = time.monotonic()
            async with browser.post(
                "/sign-in", data={"token": page.token + "x"}, allow_redirects=False
            ) as r:
                assert r.status == 403
                text = await r.text()
                assert_security_headers(r)
            timings.append(time.monotonic() - started)
            assert "Token not accepted." in text
            assert "Set-Cookie" not in r.headers
        # The first is answered at once, the next wait 0.5 s, then 1 s.
        assert timings[0] < 0.4, timings
        assert timings[1] >= 0.45, timings
        assert timings[2] >= 0.95, timings
        # Nothing beyond "not accepted": no hint of the token's length or form.
        async with browser.post("/sign-in", data={}, allow_redirects=False) as r:
            body = await r.text()
        assert "Token not accepted." in body
        assert "length" not in body
        assert "short" not in body
        # The right token still signs in (after its turn), and the slate is clean.
        await sign_in(browser, page.token)
        started = time.monotonic()
        async with browser.post("/sign-in", data={"token": "wrong"}, allow_redirects=False) as r:
            assert r.status == 403
        assert time.monotonic() - started < 0.4


async def test_a_form_without_the_session_csrf_token_changes_nothing(page: Page) -> None:
    key = page.vendor.issue(10)
    async with page.browser() as browser:
        csrf = await sign_in(browser, page.token)
        for form, headers in (
            ({"key": key}, {}),
            ({"key": key, "csrf": "forged"}, {}),
            ({"key": key, "csrf": csrf[:-1]}, {}),
            # The right token from another site's page.
            ({"key": key, "csrf": csrf}, {"Origin": "http://evil.example"}),
        ):
            async with browser.post(
                "/licenses", data=form, headers=headers, allow_redirects=False
            ) as r:
                assert r.status == 403
                assert "nothing was changed" in await r.text()
                assert_security_headers(r)
    async with page.admin() as admin:
        assert await admin.list_licenses() == []


async def test_the_overview_shows_the_seats_gauge(page: Page) -> None:
    async with page.admin() as admin:
        await admin.install_license(page.vendor.issue(10))
        await admin.add_users(["alice", "bob", "carol"], enable=True)
    async with page.browser() as browser:
        await sign_in(browser, page.token)
        async with browser.get("/") as r:
            assert r.status == 200
            assert r.content_type == "text/html"
            assert_security_headers(r)
            html = await r.text()
        assert "<svg" in html
        assert "3 of 10 seats used" in html
        assert ">3 of 10<" in html
        async with browser.get("/status.json") as r:
            numbers = await r.json()
            assert_security_headers(r)
        assert (numbers["seats_used"], numbers["seats_total"]) == (3, 10)
        for name in ("status.css", "refresh.js"):
            async with browser.get("/static/" + name) as r:
                assert r.status == 200
                assert_security_headers(r, cached=True)
        async with browser.get("/static/../app.py") as r:
            assert r.status == 404
    # No script or style inline: the policy allows only the server's own files.
    for inline in ("<script>", "style=", "<style"):
        assert inline not in html
