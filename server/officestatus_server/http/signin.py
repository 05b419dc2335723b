"""Signing in to the status page with the admin token, and out again.

The token is pasted once into the form (POST /sign-in) and compared in constant time; a
right one starts a session (an HttpOnly, SameSite=Strict cookie, Secure over TLS, lasting
`SESSION_SECONDS`). A wrong one is told "Token not accepted." and nothing more, and the
address it came from is slowed (`WrongTokens`).
"""

from __future__ import annotations

import asyncio
import hmac
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from officestatus_server.http.web import (
    COOKIE,
    SESSION_SECONDS,
    SIGN_IN,
    Session,
    Site,
    safe_next,
    same_origin,
)

NOT_ACCEPTED = "Token not accepted."
# The wait before the next try after the first wrong token, doubled with each further
# one, up to MAX_DELAY; a try whose turn is further off than MAX_WAIT is refused unread
# (the HTTP listener gives a handler 10 s).
FIRST_DELAY = 0.5
MAX_DELAY = 4.0
MAX_WAIT = 8.0
# Addresses remembered at most (the longest quiet forgotten first), each for this long
# after its last wrong token.
MAX_ADDRESSES = 4096
FORGET_SECONDS = 15 * 60


@dataclass
class _Tries:
    wrong: int
    # When the next try from this address may be checked (monotonic seconds).
    next_turn: float
    last_wrong: float


def delay_after(wrong: int) -> float:
    """The gap between two tries after `wrong` wrong tokens in a row."""
    return 0.0 if wrong <= 0 else min(FIRST_DELAY * 2 ** (wrong - 1), MAX_DELAY)


class WrongTokens:
    """Wrong tokens by client address. Each try from an address with wrong tokens behind
    it waits for its turn, and the turns are `delay_after(wrong)` apart, so tries sent at
    once are spaced out as well as tries sent one after another."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._tries: OrderedDict[str, _Tries] = OrderedDict()

    def __len__(self) -> int:
        return len(self._tries)

    def wait(self, address: str) -> float | None:
        """Seconds this try must wait before its token is checked; None: too many wrong
        tokens, refused without reading it."""
        now = self._monotonic()
        tries = self._tries.get(address)
        if tries is None:
            return 0.0
        if now - tries.last_wrong > FORGET_SECONDS:
            del self._tries[address]
            return 0.0
        turn = max(now, tries.next_turn)
        if turn - now > MAX_WAIT:
            return None
        tries.next_turn = turn + delay_after(tries.wrong)
        return turn - now

    def wrong(self, address: str) -> None:
        """A wrong token from this address."""
        now = self._monotonic()
        tries = self._tries.pop(address, None) or _Tries(0, now, now)
        tries.wrong += 1
        tries.last_wrong = now
        tries.next_turn = max(tries.next_turn, now + delay_after(tries.wrong))
        self._tries[address] = tries
        while len(self._tries) > MAX_ADDRESSES:
            self._tries.popitem(last=False)

    def right(self, address: str) -> None:
        """The right token: this address starts afresh."""
        self._tries.pop(address, None)


def register(site: Site) -> None:
    """GET and POST /sign-in, POST /sign-out."""
    wrong_tokens = WrongTokens(site.monotonic)

    async def form(request: web.Request) -> web.StreamResponse:
        if site.sessions.get(request.cookies.get(COOKIE, "")) is not None:
            return site.redirect(safe_next(request.query.get("next", "/")))
        return _form(site, request, signed_out="signed_out" in request.query)

    async def sign_in(request: web.Request) -> web.StreamResponse:
        address = request.remote or ""
        wait = wrong_tokens.wait(address)
        if wait is None or not same_origin(request):
            return _form(site, request, code=429 if wait is None else 403, error=NOT_ACCEPTED)
        if wait > 0:
            await asyncio.sleep(wait)
        posted = await request.post()
        given = posted.get("token")
        given = given.strip() if isinstance(given, str) else ""
        if not hmac.compare_digest(given.encode(), site.token.encode()):
            wrong_tokens.wrong(address)
            return _form(site, request, code=403, error=NOT_ACCEPTED)
        wrong_tokens.right(address)
        session = site.sessions.create()
        next_page = posted.get("next")
        response = site.redirect(safe_next(next_page if isinstance(next_page, str) else "/"))
        response.set_cookie(
            COOKIE,
            session.session_id,
            max_age=SESSION_SECONDS,
            path="/",
            httponly=True,
            samesite="Strict",
            secure=site.secure,
        )
        return response

    async def sign_out(request: web.Request, session: Session) -> web.StreamResponse:
        site.sessions.drop(session.session_id)
        response = site.redirect(SIGN_IN + "?signed_out=1")
        response.del_cookie(COOKIE, path="/", secure=site.secure, samesite="Strict")
        return response

    site.open("GET", SIGN_IN, form)
    site.open("POST", SIGN_IN, sign_in)
    site.post("/sign-out", sign_out)


def _form(
    site: Site,
    request: web.Request,
    *,
    code: int = 200,
    error: str = "",
    signed_out: bool = False,
) -> web.Response:
    next_page = request.query.get("next", "/")
    return site.render(
        request,
        None,
        "signin.html",
        code=code,
        title="Sign in",
        error=error,
        signed_out=signed_out,
        next_page=safe_next(next_page),
    )
