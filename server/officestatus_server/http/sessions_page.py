"""GET /sessions: who is signed in now, from which machine, with which client release;
the last logins of 3.x and 4.x clients (which keep no session) marked so. ?user=NAME for
one user, ?page=N for the pages of `PAGE_SIZE` lines."""

from __future__ import annotations

from aiohttp import web

from officestatus_server.errors import LicenseServerError
from officestatus_server.http.web import Session, Site, page_number

PAGE_SIZE = 100


def register(site: Site) -> None:
    """GET /sessions."""

    async def sessions(request: web.Request, session: Session) -> web.StreamResponse:
        user = request.query.get("user", "").strip()
        number = page_number(request)
        error = ""
        try:
            lines, total = site.service.signed_in(user, (number - 1) * PAGE_SIZE, PAGE_SIZE)
        except LicenseServerError as exc:
            lines, total, error = [], 0, exc.message
        pages = max(1, -(-total // PAGE_SIZE))
        return site.render(
            request,
            session,
            "sessions.html",
            code=404 if error else 200,
            title="Sessions",
            lines=lines,
            total=total,
            live=sum(1 for line in lines if line.session),
            user=user,
            error=error,
            page=number,
            pages=pages,
        )

    site.get("/sessions", sessions, nav="Sessions")
