"""The status page's site: the hook its pages register through, the sign-in every page
needs, the CSRF token every POST needs, the security headers, templates and static files.

A page module has `register(site: Site) -> None`, which calls `site.get(path, handler,
nav="Label")` and `site.post(path, handler)`; `http/pages.py` names every page module. A
handler is `async (request, session) -> web.StreamResponse`, almost always
`site.render(request, session, "page.html", ...)` (the template extends base.html) or,
after a POST, `site.redirect("/path", session, "What was done.")` (shown once on the
next page). The site checks, before any handler runs:

- a signed-in session (the `officestatus_session` cookie; else 303 to /sign-in);
- on a POST, the session's CSRF token in the form field `csrf`, and an Origin header, if
  the browser sent one, naming this server (else 403, and nothing is changed);

and puts the security headers on every answer (`Cache-Control: no-store` on each but the
static files). Changes go through the service with `via=BROWSER`, so the audit says so.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web
from aiohttp.web_routedef import AbstractRouteDef

from officestatus_server.errors import (
    AlreadyExists,
    InvalidInput,
    LicenseServerError,
    NotFound,
    SeatsExhausted,
)
from officestatus_server.service import LicenseService

COOKIE = "officestatus_session"
# A session lasts this long after its sign-in (the cookie and the server's own record).
SESSION_SECONDS = 8 * 3600
# Sessions kept at most (the oldest is dropped): many sign-ins cannot fill the memory.
MAX_SESSIONS = 256
SIGN_IN = "/sign-in"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

# The navigation's order, whatever order the pages register in.
NAV_ORDER = ("/", "/users", "/usage", "/sessions", "/licenses")

_CONTENT_TYPES = {
    ".css": "text/css",
    ".js": "text/javascript",
    ".png": "image/png",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True)
class Flash:
    """A message shown once, on the next page: what a change did or why it was refused."""

    text: str
    error: bool = False


@dataclass
class Session:
    """One signed-in browser: its id (the cookie), its CSRF token, when it expires
    (monotonic seconds) and the messages waiting for its next page."""

    session_id: str
    csrf: str
    expires: float
    flash: list[Flash] = field(default_factory=list)


class Sessions:
    """The signed-in sessions, by id: at most `MAX_SESSIONS`, each for `SESSION_SECONDS`."""

    def __init__(self, monotonic: Callable[[], float]) -> None:
        self._monotonic = monotonic
        self._by_id: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def create(self) -> Session:
        """A new session (the oldest dropped when there are too many)."""
        now = self._monotonic()
        for sid in [sid for sid, s in self._by_id.items() if s.expires <= now]:
            del self._by_id[sid]
        while len(self._by_id) >= MAX_SESSIONS:
            self._by_id.popitem(last=False)
        session = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + SESSION_SECONDS
        )
        self._by_id[session.session_id] = session
        return session

    def get(self, session_id: str) -> Session | None:
        """The live session with this id; None when unknown or expired."""
        session = self._by_id.get(session_id)
        if session is None:
            return None
        if session.expires <= self._monotonic():
            del self._by_id[session_id]
            return None
        return session

    def drop(self, session_id: str) -> None:
        """Sign a session out."""
        self._by_id.pop(session_id, None)


Handler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
OpenHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _when(value: datetime | date | None) -> str:
    """A time as the pages show it: "2026-12-04 18:52 UTC"; a date as "2026-12-04"."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def secure_headers(response: web.StreamResponse, *, cache: bool = False) -> None:
    """The security headers every answer of the site carries; no caching unless `cache`."""
    response.headers.update(_HEADERS)
    if not cache:
        response.headers["Cache-Control"] = "no-store"


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The files under http/static/, read once: name -> (bytes, content type)."""
    folder = resources.files("officestatus_server.http") / "static"
    files = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in _CONTENT_TYPES:
            files[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])
    return files


class Site:
    """The status page: its routes, sessions, templates and static files."""

    def __init__(
        self,
        service: LicenseService,
        token: str,
        *,
        secure: bool,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.service = service
        self.token = token
        # Over TLS: the cookie is sent over HTTPS only.
        self.secure = secure
        self.monotonic = monotonic
        self.sessions = Sessions(monotonic)
        self._routes: list[AbstractRouteDef] = []
        self._nav: dict[str, str] = {}
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("officestatus_server.http", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._templates.filters["when"] = _when
        self._static = _static_files()
        self._routes.append(web.get("/static/{name}", self._serve_static))

    # --- the hook -----------------------------------------------------------------------

    def get(self, path: str, handler: Handler, nav: str | None = None) -> None:
        """Serve GET `path` to signed-in sessions; `nav`: its label in the navigation."""
        self._routes.append(web.get(path, self._guarded(handler, post=False)))
        if nav is not None:
            self._nav[path] = nav

    def post(self, path: str, handler: Handler) -> None:
        """Serve POST `path` to signed-in sessions whose form carries their CSRF token."""
        self._routes.append(web.post(path, self._guarded(handler, post=True)))

    def open(self, method: str, path: str, handler: OpenHandler) -> None:
        """Serve `path` without a session (the sign-in itself); headers as on every page."""

        async def headed(request: web.Request) -> web.StreamResponse:
            response = await handler(request)
            secure_headers(response)
            return response

        self._routes.append(web.route(method, path, headed))

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """For the listener's `on_response_prepare`: the security headers on the answers no
        handler of the site made too (a path it does not serve, a body too large), but
        not on /metrics, which stays as it is."""
        if request.path != "/metrics" and "Content-Security-Policy" not in response.headers:
            secure_headers(response)

    def routes(self) -> list[AbstractRouteDef]:
        """Every route registered, for the HTTP listener."""
        return list(self._routes)

    # --- answers ------------------------------------------------------------------------

    def render(
        self,
        request: web.Request,
        session: Session | None,
        template: str,
        *,
        code: int = 200,
        **context: Any,
    ) -> web.Response:
        """A page from its template, with the layout's navigation, the CSRF token for its
        forms and the messages waiting for it; `code` its HTTP status."""
        flash: list[Flash] = []
        if session is not None:
            flash, session.flash = session.flash, []
        nav = [
            (path, self._nav[path], path == request.path)
            for path in sorted(self._nav, key=_nav_place)
        ]
        text = self._templates.get_template(template).render(
            signed_in=session is not None,
            csrf=session.csrf if session is not None else "",
            nav=nav,
            flash=flash,
            **context,
        )
        return web.Response(text=text, status=code, content_type="text/html", charset="utf-8")

    def redirect(
        self, location: str, session: Session | None = None, message: str = "", error: bool = False
    ) -> web.Response:
        """303 to `location`, with a message for the session's next page."""
        if session is not None and message:
            session.flash.append(Flash(message, error))
        return web.Response(status=303, headers={"Location": location})

    def refuse(self, request: web.Request, session: Session | None, message: str) -> web.Response:
        """403, and why, for a form that did not come from this site's page."""
        return self.render(
            request, session, "refused.html", code=403, title="Not changed", message=message
        )

    # --- the checks ---------------------------------------------------------------------

    def _guarded(self, handler: Handler, *, post: bool) -> OpenHandler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            session = self.sessions.get(request.cookies.get(COOKIE, ""))
            response: web.StreamResponse
            if session is None:
                location = SIGN_IN
                if not post and request.path != "/":
                    location += "?" + urlencode({"next": request.path_qs})
                response = self.redirect(location)
            elif post and not await self._form_is_ours(request, session):
                response = self.refuse(
                    request,
                    session,
                    "This form did not come from this status page (or the page was too old), "
                    "so nothing was changed. Open the page again and retry.",
                )
            else:
                response = await handler(request, session)
            secure_headers(response)
            return response

        return guarded

    async def _form_is_ours(self, request: web.Request, session: Session) -> bool:
        if not same_origin(request):
            return False
        form = await request.post()
        given = form.get("csrf")
        return isinstance(given, str) and hmac.compare_digest(given.encode(), session.csrf.encode())

    async def _serve_static(self, request: web.Request) -> web.StreamResponse:
        found = self._static.get(request.match_info["name"])
        if found is None:
            response = web.Response(status=404, text="Not found.")
        else:
            body, content_type = found
            response = web.Response(body=body, content_type=content_type)
            response.headers["Cache-Control"] = "max-age=3600"
        secure_headers(response, cache=found is not None)
        return response


def same_origin(request: web.Request) -> bool:
    """False when the browser says the request came from another site's page.

    A browser that sends Sec-Fetch-Site is believed by it: such browsers say
    "Origin: null" for a form posted from a page with "Referrer-Policy: no-referrer" (ours),
    so Origin alone would refuse every sign-in from Chromium. Others are judged by Origin."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site == "same-origin"
    origin = request.headers.get("Origin")
    return origin is None or origin == f"{request.scheme}://{request.host}"


def _nav_place(path: str) -> tuple[int, str]:
    return (NAV_ORDER.index(path) if path in NAV_ORDER else len(NAV_ORDER), path)


def safe_next(value: str) -> str:
    """Where to go after the sign-in: a path on this site only ("/" otherwise)."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def page_number(request: web.Request) -> int:
    """?page=N, from 1 (1 when missing or not a number)."""
    value = request.query.get("page", "1")
    return max(1, int(value)) if value.isdigit() and len(value) < 10 else 1


# The HTTP status of a page that shows a refusal, by the refusal's kind (else 409).
_STATUSES: tuple[tuple[type[LicenseServerError], int], ...] = (
    (InvalidInput, 400),
    (NotFound, 404),
    (AlreadyExists, 409),
    (SeatsExhausted, 409),
)


def http_status(exc: LicenseServerError) -> int:
    """The HTTP status of a page that shows this refusal."""
    return next((code for kind, code in _STATUSES if isinstance(exc, kind)), 409)
