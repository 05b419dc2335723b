"""The status page's Users page: search by name, a filter (all, enabled, disabled, over
capacity) and pages of PAGE_SIZE users, fast at 100,000 users (pure functions over the
registry; the routes are in the page's web module).

Users are listed by name key, the order `officestatus-admin user list` shows. The order
is sorted once and kept while the set of names stays the same: enabling or disabling a
user (a new registry each time) does not sort 100,000 names again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlencode

from aiohttp import web

from officestatus_server.core.model import User
from officestatus_server.core.names import MAX_NAME_LENGTH, name_key
from officestatus_server.core.registry import Registry
from officestatus_server.core.texts import count
from officestatus_server.errors import LicenseServerError
from officestatus_server.http.web import Handler, Session, Site, http_status
from officestatus_server.service import BROWSER

PAGE_SIZE = 50


class Show(StrEnum):
    """Which users the filter lets through."""

    ALL = "all"
    ENABLED = "enabled"
    DISABLED = "disabled"
    OVER = "over"

    @property
    def label(self) -> str:
        """What the filter's choice says."""
        return _SHOW_LABELS[self]


_SHOW_LABELS = {
    Show.ALL: "All",
    Show.ENABLED: "Enabled",
    Show.DISABLED: "Disabled",
    Show.OVER: "Over capacity",
}


@dataclass(frozen=True)
class UsersQuery:
    """What the page was asked: a search, a filter, a page (from 1)."""

    q: str = ""
    show: Show = Show.ALL
    page: int = 1

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> UsersQuery:
        """The query from a URL's parameters; anything unreadable is its default (a page
        past the last is the last, once the users are counted)."""
        q = params.get("q", "").strip()[:MAX_NAME_LENGTH]
        try:
            show = Show(params.get("show", Show.ALL))
        except ValueError:
            show = Show.ALL
        try:
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            page = 1
        return cls(q, show, page)

    def url(self, **change: str | int) -> str:
        """This query's /users URL, with some parameters changed; defaults left out."""
        params: dict[str, str | int] = {"q": self.q, "show": self.show.value, "page": self.page}
        params.update(change)
        defaults: dict[str, str | int] = {"q": "", "show": Show.ALL.value, "page": 1}
        kept = {k: v for k, v in params.items() if v != defaults.get(k)}
        return "/users" + (f"?{urlencode(kept)}" if kept else "")


@dataclass(frozen=True)
class UserRow:
    """One user as the page lists it."""

    user: User
    over_capacity: bool

    @property
    def state(self) -> str:
        """ "enabled", "disabled" or "enabled, over capacity"."""
        if not self.user.enabled:
            return "disabled"
        return "enabled, over capacity" if self.over_capacity else "enabled"


@dataclass(frozen=True)
class UsersPage:
    """One page of the users the query found."""

    query: UsersQuery
    rows: list[UserRow]
    # Users the query found, over all pages.
    found: int
    pages: int
    # Users in each filter (without the search): the filter's choices show them.
    counts: dict[Show, int]

    @property
    def first_shown(self) -> int:
        """The place of the first row among those found, from 1 (0: none found)."""
        return (self.query.page - 1) * PAGE_SIZE + 1 if self.rows else 0

    @property
    def last_shown(self) -> int:
        """The place of the last row among those found."""
        return self.first_shown + len(self.rows) - 1 if self.rows else 0


class UserIndex:
    """The users in name order, for one registry after another (see the module's
    docstring): `page` answers a query against the registry given."""

    def __init__(self) -> None:
        self._order: list[str] = []
        self._keys: frozenset[str] = frozenset()

    def _sorted(self, registry: Registry) -> list[str]:
        users = registry.users
        if len(users) != len(self._keys) or users.keys() != self._keys:
            self._order = sorted(users)
            self._keys = frozenset(self._order)
        return self._order

    def page(self, registry: Registry, now: datetime, query: UsersQuery) -> UsersPage:
        """The page the query asks for (the last page when it asks past the end)."""
        users = registry.users
        order = self._sorted(registry)
        over = {name_key(n) for n in registry.over_capacity(now)}
        enabled = registry.enabled_count()
        counts = {
            Show.ALL: len(order),
            Show.ENABLED: enabled,
            Show.DISABLED: len(order) - enabled,
            Show.OVER: len(over),
        }
        keys: list[str] = order
        if query.show is Show.OVER:
            keys = sorted(over)
        if query.q:
            needle = name_key(query.q)
            keys = [k for k in keys if needle in k]
        if query.show is Show.ENABLED:
            keys = [k for k in keys if users[k].enabled]
        elif query.show is Show.DISABLED:
            keys = [k for k in keys if not users[k].enabled]
        pages = max(1, math.ceil(len(keys) / PAGE_SIZE))
        page = min(query.page, pages)
        if page != query.page:
            query = UsersQuery(query.q, query.show, page)
        start = (page - 1) * PAGE_SIZE
        rows = [UserRow(users[k], k in over) for k in keys[start : start + PAGE_SIZE]]
        return UsersPage(query, rows, len(keys), pages, counts)


# --- the routes ---------------------------------------------------------------------------


def changed_text(verb: str, users: Sequence[User], summary: str) -> str:
    """What `officestatus-admin user enable|disable` prints for the users a change touched."""
    names = ", ".join(u.name for u in users) or "nobody"
    return f"{verb} {count(len(users), 'user')}: {names}.\n{summary}"


def register(site: Site) -> None:
    """GET /users; POST /users/enable and /users/disable (field `user`), through the
    service's methods of the admin RPCs, audited as made in the browser."""
    index = UserIndex()

    def page(
        request: web.Request, session: Session, query: UsersQuery, code: int = 200, error: str = ""
    ) -> web.Response:
        service = site.service
        found = index.page(service.registry, service.now(), query)
        return site.render(
            request,
            session,
            "users.html",
            code=code,
            title="Users",
            found=found,
            query=found.query,
            choices=list(Show),
            summary=service.status().summary,
            error=error,
        )

    async def users(request: web.Request, session: Session) -> web.StreamResponse:
        return page(request, session, UsersQuery.parse(request.query))

    def change(verb: str) -> Handler:
        async def handle(request: web.Request, session: Session) -> web.StreamResponse:
            form = await request.post()
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            back = UsersQuery.parse(fields)
            name = fields.get("user", "")
            service = site.service
            act = service.enable_users if verb == "Enabled" else service.disable_users
            try:
                touched = await act([name], via=BROWSER)
            except LicenseServerError as exc:
                return page(request, session, back, http_status(exc), exc.message)
            message = changed_text(verb, touched, service.status().summary)
            return site.redirect(back.url(), session, message)

        return handle

    site.get("/users", users, nav="Users")
    site.post("/users/enable", change("Enabled"))
    site.post("/users/disable", change("Disabled"))
