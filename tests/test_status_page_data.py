"""The status page's Users and Usage pages over HTTP, without a browser, against a real
`officestatus-server --http-listen` process: enabling and disabling needs the session's
CSRF token (else 403 and nothing changed) and is audited as made in the browser; a
refusal for full seats says what the CLI says; a search finds one user among 100,000;
the usage CSV parses with the csv module and has the day's logins."""

from __future__ import annotations

import csv
import io
import re
import time
from html import unescape
from pathlib import Path

from officestatus_client import SeatClient
from officestatus_client.admin_cli import run as admin_run
from tests.test_status_page_http import Page, assert_security_headers, html_of, page, sign_in

__all__ = ["page"]  # the fixture, shared with the other pages' tests

_ROW = re.compile(r"<tr><td>([^<]*)</td>\s*<td>(?:<strong>)?([^<]*)")
_ALERT = re.compile(r'<p class="flash flash-error" role="alert">([^<]*)</p>')
_MESSAGE = re.compile(r'<p class="flash" role="status">([^<]*)</p>')


def listed(html: str) -> list[tuple[str, str]]:
    """The users page's rows: (name, state)."""
    return [(unescape(name), state) for name, state in _ROW.findall(html)]


async def cli_error(page: Page, tmp_path: Path, *argv: str) -> str:
    """What `officestatus-admin` says on stderr for a refused command (its exit code 1)."""
    out, err = io.StringIO(), io.StringIO()
    token = tmp_path / "token"
    token.write_text(page.token)
    argv = ("--address", page.address, "--token-file", str(token), *argv)
    code = await admin_run(list(argv), out, err)
    assert code == 1, out.getvalue()
    return err.getvalue()


async def test_the_users_and_usage_pages_need_the_sign_in(page: Page) -> None:
    async with page.browser() as browser:
        for path in ("/users?q=a", "/usage", "/usage.csv"):
            async with browser.get(path, allow_redirects=False) as r:
                assert r.status == 303, path
                assert r.headers["Location"].startswith("/sign-in?next="), path
        for path in ("/users/enable", "/users/disable"):
            async with browser.post(path, data={"user": "a"}, allow_redirects=False) as r:
                assert r.status == 303, path
                assert r.headers["Location"] == "/sign-in"


async def test_enable_and_disable_need_the_csrf_token_and_are_audited_as_in_the_browser(
    page: Page,
) -> None:
    async with page.admin() as admin:
        await admin.add_users(["alice", "bob"], enable=True)
    async with page.browser() as browser:
        csrf = await sign_in(browser, page.token)
        for form in ({"user": "alice"}, {"user": "alice", "csrf": "forged"}):
            async with browser.post("/users/disable", data=form, allow_redirects=False) as r:
                assert r.status == 403
                assert_security_headers(r)
        async with page.admin() as admin:
            assert all(u.enabled for u in await admin.list_users())

        form = {"user": "alice", "csrf": csrf, "q": "ali", "show": "enabled", "page": "1"}
        async with browser.post("/users/disable", data=form, allow_redirects=False) as r:
            assert r.status == 303
            # Back to the list the admin was looking at.
            assert r.headers["Location"] == "/users?q=ali&show=enabled"
        async with browser.get("/users?q=ali") as r:
            html = await r.text()
            assert_security_headers(r)
        assert listed(html) == [("alice", "disabled")]
        # The CLI's words for it, once.
        assert _MESSAGE.findall(html)[0].startswith("Disabled 1 user: alice.\n")
        async with browser.post("/users/enable", data={**form}, allow_redirects=False) as r:
            assert r.status == 303
    async with page.admin() as admin:
        users = {u.name: u.enabled for u in await admin.list_users()}
        audit = await admin.audit(2)
    assert users == {"alice": True, "bob": True}
    assert [(a.action, a.subject) for a in audit] == [
        ("users.enable", "alice"),
        ("users.disable", "alice"),
    ]
    assert all("made in the browser" in a.result for a in audit)


async def test_a_refusal_for_full_seats_says_what_the_cli_says(page: Page, tmp_path: Path) -> None:
    async with page.admin() as admin:
        await admin.install_license(page.vendor.issue(1))
        await admin.add_users(["alice"], enable=True)
        await admin.add_users(["bob"])
    said = await cli_error(page, tmp_path, "user", "enable", "bob")
    async with page.browser() as browser:
        csrf = await sign_in(browser, page.token)
        data = {"user": "bob", "csrf": csrf}
        async with browser.post("/users/enable", data=data, allow_redirects=False) as r:
            assert r.status == 409
            html = await r.text()
    (shown,) = _ALERT.findall(html)
    assert shown == "1 of 1 seats in use: install a license or disable a user."
    assert said == f"error: {shown} (SEATS_EXHAUSTED)\n"
    assert ("bob", "disabled") in listed(html)


async def test_a_search_finds_one_user_among_100000(page: Page) -> None:
    names = [f"user{i:06d}" for i in range(100_000)]
    async with page.admin() as admin:
        for start in range(0, len(names), 10_000):
            await admin.add_users(names[start : start + 10_000], enable=start < 20_000)
    async with page.browser() as browser:
        await sign_in(browser, page.token)
        started = time.perf_counter()
        async with browser.get("/users", params={"q": "USER054321"}) as r:
            assert r.status == 200
            found = await r.text()
        searched = time.perf_counter() - started
        async with browser.get("/users", params={"show": "disabled", "page": "99999"}) as r:
            last = await r.text()
    assert listed(found) == [("user054321", "disabled")]
    assert "1 to 1 of 1 user," in found
    # Asked past the end: the last page of the 80,000 disabled users.
    assert "Page 1,600 of 1,600" in last
    assert listed(last)[-1] == ("user099999", "disabled")
    assert searched < 5, searched


async def test_the_usage_page_draws_the_days_and_the_csv_parses(page: Page) -> None:
    async with page.admin() as admin:
        await admin.add_users(["alice"], enable=True)
        await admin.add_users(["bob"])
    async with SeatClient(page.address) as seat:
        assert (await seat.login("alice")).granted
        assert not (await seat.login("bob")).granted
        assert not (await seat.login("nobody")).granted
    async with page.browser() as browser:
        await sign_in(browser, page.token)
        html = await html_of(browser, "/usage")
        async with browser.get("/usage.csv") as r:
            assert r.status == 200
            assert r.content_type == "text/csv"
            assert r.headers["Content-Disposition"].startswith("attachment; filename=")
            assert_security_headers(r)
            text = await r.text()
    assert '<title id="peaks-title">' in html
    assert '<title id="denials-title">Denied logins by reason</title>' in html
    assert "USER_DISABLED" in html
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 30
    today = rows[-1]
    assert today["peak_enabled_users"] == "1"
    assert today["logins_granted"] == "1"
    assert today["logins_denied"] == "2"
    assert (today["denied_USER_DISABLED"], today["denied_USER_UNKNOWN"]) == ("1", "1")
    assert today["no_seat_limit"] == "1"  # the evaluation
