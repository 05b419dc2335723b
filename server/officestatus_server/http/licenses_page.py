"""GET /licenses: every installed license (seats, major version, customer, dates,
whether it counts and why not); POST /licenses (field `key`): install a pasted key, with
the checks and messages of `officestatus-admin license install`, audited as made in the
browser."""

from __future__ import annotations

from aiohttp import web

from officestatus_server.core.model import InstalledLicense
from officestatus_server.core.registry import not_counting_reason
from officestatus_server.core.texts import count
from officestatus_server.errors import LicenseServerError
from officestatus_server.http.web import Session, Site, http_status
from officestatus_server.service import BROWSER, LicenseService


def installed_text(service: LicenseService, lic: InstalledLicense) -> str:
    """What `officestatus-admin license install` prints for an installed key."""
    key = lic.key
    assert key is not None  # an installed key verified
    line = (
        f"Installed license {lic.license_id} ({key.kind.value}, {count(key.seats, 'seat')}, "
        f"major version {key.major_version})."
    )
    reason = not_counting_reason(lic, service.registry.major)
    if reason:
        line += f"\nIts seats do not count here: {reason}"
    alerts = [f"ALERT: {alert.message}" for alert in service.alerts()]
    return "\n".join([line, service.status().summary, *alerts])


def register(site: Site) -> None:
    """GET and POST /licenses."""

    def page(
        request: web.Request, session: Session, code: int = 200, error: str = "", key: str = ""
    ) -> web.Response:
        service = site.service
        registry = service.registry
        rows = [(lic, not_counting_reason(lic, registry.major)) for lic in service.licenses()]
        return site.render(
            request,
            session,
            "licenses.html",
            code=code,
            title="Licenses",
            rows=rows,
            summary=service.status().summary,
            error=error,
            key=key,
        )

    async def licenses(request: web.Request, session: Session) -> web.StreamResponse:
        return page(request, session)

    async def install(request: web.Request, session: Session) -> web.StreamResponse:
        form = await request.post()
        key = form.get("key")
        key = key if isinstance(key, str) else ""
        try:
            lic = await site.service.install_license(key, via=BROWSER)
        except LicenseServerError as exc:
            # The pasted key stays in the form, to be corrected.
            return page(request, session, http_status(exc), exc.message, key)
        return site.redirect("/licenses", session, installed_text(site.service, lic))

    site.get("/licenses", licenses, nav="Licenses")
    site.post("/licenses", install)
