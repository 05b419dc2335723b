"""The status page over HTTP, without a browser, against a real `officestatus-server
--http-listen` process: every page needs the sign-in (else 303 to /sign-in), a wrong
token is refused with "Token not accepted." and slowed, every POST needs the session's
CSRF token (else 403 and nothing changed), and every answer carries the security
headers."""

from __future__ import annotations

import dataclasses
import io
import re
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from officestatus_client import AdminClient, SeatClient
from officestatus_client.admin_cli import run as admin_run
from officestatus_server.core.keys import public_key_text
from officestatus_server.http.web import CONTENT_SECURITY_POLICY
from tests.legacy_servers import LegacyInstallation, LegacyUser, LegacyVendor
from tests.process import start_server_process
from tests.support import FakeClock, RunningServer, Vendor, free_port
from tests.tls import ScratchCA

TIMEOUT = aiohttp.ClientTimeout(total=30)
_PAGE = re.compile(r"^status page: (https?://127\.0\.0\.1:\d+)/ ", re.M)
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    """A running server with its status page."""

    address: str
    base: str
    token: str
    vendor: Vendor

    def admin(self) -> AdminClient:
        """The admin client, as `officestatus-admin` speaks to the server."""
        return AdminClient(self.address, self.token)

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
    yield Page(server.address, match.group(1), (data / "admin-token").read_text().strip(), vendor)
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


async def html_of(browser: aiohttp.ClientSession, path: str) -> str:
    """A page as a signed-in browser gets it: 200, the headers, its HTML."""
    async with browser.get(path, allow_redirects=False) as r:
        assert r.status == 200, path
        assert r.content_type == "text/html"
        assert_security_headers(r)
        return await r.text()


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
        # Unknown paths and refused bodies carry the headers too.
        async with browser.get("/nowhere") as r:
            assert r.status == 404
            assert_security_headers(r)
        async with browser.post("/sign-in", data={"token": "x" * 20_000}) as r:
            assert r.status == 413
            assert_security_headers(r)
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
        # No token, a short one, one a character too long: told nothing but "not accepted".
        for form in ({}, {"token": "x"}, {"token": page.token + "x"}):
            started = time.monotonic()
            async with browser.post("/sign-in", data=form, allow_redirects=False) as r:
                assert r.status == 403
                text = await r.text()
                assert_security_headers(r)
            timings.append(time.monotonic() - started)
            assert "Token not accepted." in text
            for hint in ("length", "short", "long", "empty"):
                assert hint not in text.lower()
            assert "Set-Cookie" not in r.headers
        # The next after 0.5 s, then after 1 s (the first is answered at once: how soon
        # depends on the machine's load, so the spacing's arithmetic is tested in
        # test_status_page_parts with a clock of its own).
        assert timings[1] >= 0.45, timings
        assert timings[2] >= 0.95, timings
        # The right token still signs in (after its turn, 2 s).
        await sign_in(browser, page.token)
        async with browser.post("/sign-in", data={"token": "wrong"}, allow_redirects=False) as r:
            assert r.status == 403


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
            # The same, from a browser that says where the request came from.
            ({"key": key, "csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
            ({"key": key, "csrf": csrf}, {"Sec-Fetch-Site": "same-site"}),
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
        html = await html_of(browser, "/")
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


async def test_a_pasted_key_is_installed_and_audited_as_made_in_the_browser(page: Page) -> None:
    key = page.vendor.issue(25, license_id="L-WEB-25")
    async with page.browser() as browser:
        csrf = await sign_in(browser, page.token)
        async with browser.get("/licenses") as r:
            assert r.status == 200
            assert "No licenses are installed." in await r.text()
        async with browser.post(
            "/licenses", data={"key": key, "csrf": csrf}, allow_redirects=False
        ) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/licenses"
        html = await html_of(browser, "/licenses")
        assert "Installed license L-WEB-25 (purchased, 25 seats, major version 6)." in html
        assert "<td>L-WEB-25</td>" in html
        # The message is shown once.
        async with browser.get("/licenses") as r:
            assert "Installed license L-" not in await r.text()
        html = await html_of(browser, "/")
        assert "<td>L-WEB-25</td>" in html
        assert "0 of 25 seats used" in html
    async with page.admin() as admin:
        assert [lic.license_id for lic in await admin.list_licenses()] == ["L-WEB-25"]
        record = (await admin.audit())[0]
    assert record.action == "license.install"
    assert "made in the browser" in record.result


async def _cli_refusal(page: Page, key_file: Path) -> str:
    """What `officestatus-admin license install FILE` says when it refuses."""
    token_file = key_file.with_name("admin-token")
    token_file.write_text(page.token)
    out, err = io.StringIO(), io.StringIO()
    code = await admin_run(
        [
            "--address",
            page.address,
            "--token-file",
            str(token_file),
            "license",
            "install",
            str(key_file),
        ],
        out,
        err,
    )
    assert code != 0
    found = re.search(r"^error: (.*) \([A-Z_]+\)$", err.getvalue(), re.M)
    assert found is not None, err.getvalue()
    return found.group(1)


async def test_a_refused_key_shows_the_clis_message_and_installs_nothing(
    page: Page, tmp_path: Path
) -> None:
    other = Vendor()
    refused = {
        "not a key": "this is not a license key",
        "unknown signer": other.issue(10),
        "5.x": page.vendor.issue(10, major=5),
    }
    async with page.browser() as browser:
        csrf = await sign_in(browser, page.token)
        for name, key in refused.items():
            key_file = tmp_path / "key.txt"
            key_file.write_text(key)
            expected = await _cli_refusal(page, key_file)
            async with browser.post(
                "/licenses", data={"key": key, "csrf": csrf}, allow_redirects=False
            ) as r:
                html = await r.text()
                assert r.status in (400, 409), name
                assert_security_headers(r)
            assert expected in unescape(html), (name, expected)
            # The pasted key stays in the box, to be corrected.
            assert key in unescape(html)
    async with page.admin() as admin:
        assert await admin.list_licenses() == []


async def test_the_sessions_page_lists_who_is_signed_in(page: Page) -> None:
    async with page.admin() as admin:
        await admin.add_users(["alice", "bob"], enable=True)
    async with SeatClient(page.address, "6.0.0") as seat:
        assert (await seat.login("alice", machine_name="PC-ALICE")).granted
        async with page.browser() as browser:
            await sign_in(browser, page.token)
            async with browser.get("/sessions") as r:
                assert r.status == 200
                assert_security_headers(r)
                html = await r.text()
            assert "<td>alice</td><td>PC-ALICE</td>" in html
            assert "6.0.0 (6.x)" in html
            assert "bob" not in html
            async with browser.get("/sessions?user=bob") as r:
                assert "No one is signed in." in await r.text()
            async with browser.get("/sessions?user=nobody") as r:
                assert r.status == 404
                assert "nobody" in await r.text()


class _Marked(HTMLParser):
    """The text of each element carrying `attribute`, by the attribute's value."""

    def __init__(self, attribute: str) -> None:
        super().__init__()
        self.attribute = attribute
        self.found: dict[str, str] = {}
        self._open: list[tuple[str, int]] = []  # (value, depth) of the marked elements open
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "input", "meta", "link", "img"):
            return
        self._depth += 1
        value = dict(attrs).get(self.attribute)
        if value is not None:
            self._open.append((value, self._depth))
            self.found[value] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in ("br", "input", "meta", "link", "img"):
            return
        if self._open and self._open[-1][1] == self._depth:
            value, _ = self._open.pop()
            self.found[value] = " ".join(self.found[value].split())
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for value, _ in self._open:
            self.found[value] += data + " "


def marked(html: str, attribute: str) -> dict[str, str]:
    """The text of each element with `attribute` (e.g. data-alert), by its value."""
    parser = _Marked(attribute)
    parser.feed(html)
    return parser.found


# --- in this process, on a clock the test moves (the evaluation, a clock set back, expiry)


@pytest.fixture
async def moved(tmp_path: Path) -> AsyncIterator[tuple[Page, RunningServer]]:
    """A server in this test's process, with the status page, on a clock the test moves."""
    server = RunningServer(tmp_path / "data", Vendor(), FakeClock())
    server.config = dataclasses.replace(server.config, http_listen="127.0.0.1:0")
    await server.start()
    assert server.app is not None
    assert server.app.http is not None
    base = f"http://127.0.0.1:{server.app.http.port}"
    try:
        yield Page(server.address, base, server.token, server.vendor), server
    finally:
        await server.stop()


async def alerts_on(browser: aiohttp.ClientSession) -> dict[str, str]:
    """The overview's alerts: kind -> what it says."""
    async with browser.get("/", allow_redirects=False) as r:
        assert r.status == 200
        return marked(await r.text(), "data-alert")


async def test_the_evaluations_last_days_and_a_clock_set_back_are_alerts(
    moved: tuple[Page, RunningServer],
) -> None:
    page, server = moved
    async with page.admin() as admin:
        await admin.add_users(["ann"], enable=True)
    async with page.browser() as browser:
        await sign_in(browser, page.token)
        html = await html_of(browser, "/")
        assert "Evaluation: 30 days left (ends 2026-12-02)." in html
        assert "1 user enabled, no seat limit" in html
        assert await alerts_on(browser) == {}
        server.clock.advance(days=23, hours=1)
        # 23 days on, the session has long expired: sign in again.
        await sign_in(browser, page.token)
        alerts = await alerts_on(browser)
        assert list(alerts) == ["evaluation_ending"]
        assert (
            "The evaluation ends in 7 days (2026-12-02): install a license."
            in alerts["evaluation_ending"]
        )
        # Set back ten days to stretch the evaluation: it ends instead, and says why.
        async with SeatClient(page.address) as seat:
            assert (await seat.login("ann")).granted
            server.clock.advance(days=-10)
            assert not (await seat.login("ann")).granted
        alerts = await alerts_on(browser)
        assert "clock_set_back" in alerts
        assert "The system clock was set back" in alerts["clock_set_back"]
        async with browser.get("/") as r:
            assert "The evaluation has ended." in await r.text()


async def test_a_session_expires_after_8_hours(moved: tuple[Page, RunningServer]) -> None:
    page, server = moved
    async with page.browser() as browser:
        await sign_in(browser, page.token)
        server.clock.advance(hours=7, minutes=59)
        async with browser.get("/", allow_redirects=False) as r:
            assert r.status == 200
        server.clock.advance(minutes=1)
        async with browser.get("/", allow_redirects=False) as r:
            assert r.status == 303


async def test_near_full_and_over_capacity_are_alerts_and_the_gauge_says_so(page: Page) -> None:
    async with page.admin() as admin:
        await admin.install_license(page.vendor.issue(10, license_id="L-TEN"))
        await admin.install_license(page.vendor.issue(2, license_id="L-TWO"))
        await admin.add_users([f"user{i:02d}" for i in range(11)], enable=True)
        async with page.browser() as browser:
            await sign_in(browser, page.token)
            alerts = await alerts_on(browser)
            assert list(alerts) == ["seats_90"]
            assert "11 of 12 seats in use (91%)" in alerts["seats_90"]
            html = await html_of(browser, "/")
            assert "11 of 12 seats used" in html
            assert 'class="gauge gauge-near-full"' in html
            # Each license with its seats (one that does not count: see the takeover).
            rows = marked(html, "data-license")
            assert rows["L-TEN"] == "L-TEN purchased 10"
            assert "Support until 2027-11-01." in html
            # Said once: the seats line leaves the date to the line below it.
            assert html.count("2027-11-01") == 1
            # The 2-seat license removed (forced): one user beyond the seats.
            await admin.remove_license("L-TWO", force=True)
            alerts = await alerts_on(browser)
            assert set(alerts) == {"seats_90", "seats_100", "over_capacity"}
            assert "Over capacity: user10" in alerts["over_capacity"]
            html = await html_of(browser, "/")
            assert "11 users enabled for 10 seats, 1 over capacity" in html
            assert ">11 of 10<" in html
            assert 'class="gauge gauge-over"' in html
            async with browser.get("/status.json") as r:
                numbers = await r.json()
            assert numbers["alerts"] == ["seats_90", "seats_100", "over_capacity"]


async def test_an_unread_takeover_report_is_an_alert_until_marked_seen(tmp_path: Path) -> None:
    legacy = LegacyVendor()
    old = LegacyInstallation(
        release=5,
        port=free_port(),
        listen_host="127.0.0.1",
        heartbeat_seconds=30,
        users=[LegacyUser("anna", enabled_at="2022-01-01 10:00:00"), LegacyUser("ANNA ")],
        licenses=[legacy.key("L5-1", major=5, seats=10)],
    )
    old.write(tmp_path / "old")
    server = RunningServer(tmp_path / "data", Vendor(), FakeClock())
    keys = server.data_dir / "vendor-keys"
    keys.mkdir()
    public = Ed25519PublicKey.from_public_bytes(legacy.public_raw())
    (keys / "kms-legacy.pub").write_text(public_key_text(legacy.kid, public))
    server.config = dataclasses.replace(
        server.config, upgrade_from=tmp_path / "old", http_listen="127.0.0.1:0"
    )
    await server.start()
    try:
        assert server.app is not None
        assert server.app.http is not None
        page = Page(
            server.address, f"http://127.0.0.1:{server.app.http.port}", server.token, Vendor()
        )
        async with page.browser() as browser:
            await sign_in(browser, page.token)
            alerts = await alerts_on(browser)
            assert "takeover_report" in alerts
            text = alerts["takeover_report"]
            assert "officestatus-admin takeover-report --seen" in text
            assert "user 'anna': merged ('ANNA ' is the same account on 6.x; enabled)" in text
            async with browser.get("/") as r:
                rows = marked(await r.text(), "data-license")
            assert rows["L5-1"].startswith("L5-1 purchased does not count: ")
            async with page.admin() as admin:
                await admin.mark_takeover_report_seen()
            assert "takeover_report" not in await alerts_on(browser)
    finally:
        await server.stop()


async def test_with_tls_the_page_is_https_and_the_cookie_secure(tmp_path: Path) -> None:
    ca = ScratchCA(tmp_path)
    issued = ca.issue("server", server=True)
    data = tmp_path / "data"
    server = await start_server_process(
        data,
        "--http-listen",
        "127.0.0.1:0",
        "--tls-cert",
        str(issued.cert),
        "--tls-key",
        str(issued.key),
    )
    try:
        match = _PAGE.search(server.banner)
        assert match is not None, server.banner
        assert match.group(1).startswith("https://")
        token = (data / "admin-token").read_text().strip()
        trust = ssl.create_default_context(cafile=str(ca.pem))
        async with aiohttp.ClientSession(
            match.group(1),
            timeout=TIMEOUT,
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(ssl=trust),
        ) as browser:
            async with browser.post("/sign-in", data={"token": token}, allow_redirects=False) as r:
                assert r.status == 303
                cookie = r.headers["Set-Cookie"]
            assert "secure" in {part.strip().lower() for part in cookie.split(";")}
            await html_of(browser, "/")
    finally:
        code, output = await server.stop()
    assert code == 0, output
