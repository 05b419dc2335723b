"""The status page's page modules: each one's `register(site)` adds its routes (see
`web.Site`). A new page is a module and one line here."""

from __future__ import annotations

from collections.abc import Callable

from officestatus_server.http import (
    licenses_page,
    overview_page,
    sessions_page,
    signin,
    usage_page,
    users_page,
)
from officestatus_server.http.web import Site

PAGES: tuple[Callable[[Site], None], ...] = (
    signin.register,
    overview_page.register,
    sessions_page.register,
    licenses_page.register,
    users_page.register,
    usage_page.register,
)


def status_site(site: Site) -> Site:
    """The site with every page registered."""
    for register in PAGES:
        register(site)
    return site
