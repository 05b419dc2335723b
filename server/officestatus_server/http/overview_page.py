"""The overview (GET /): the seats gauge, the evaluation or support, the alerts, every
installed license with its seats or why it does not count; /status.json the numbers the
page's script refreshes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from officestatus_server.core.registry import not_counting_reason
from officestatus_server.core.status import StatusView
from officestatus_server.core.texts import count
from officestatus_server.http.gauge import gauge_state, gauge_svg
from officestatus_server.http.web import Session, Site
from officestatus_server.service import LicenseService

# Lines of the takeover report that need a look, shown at most.
ATTENTION_SHOWN = 50
REPORT_COMMAND = "officestatus-admin takeover-report"


@dataclass(frozen=True)
class PageAlert:
    """One alert as the overview shows it: its kind (for scripts and tests), what it says,
    and the lines under it."""

    kind: str
    message: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class LicenseLine:
    """One installed license on the overview: its seats when they count, else why not."""

    license_id: str
    kind: str
    seats: int | None
    reason: str | None


def page_alerts(service: LicenseService, status: StatusView) -> list[PageAlert]:
    """The alerts in force: the seat and evaluation alerts, a clock set back, and a
    takeover report not yet read."""
    found = [PageAlert(alert.kind, _sentence(alert.message)) for alert in service.alerts()]
    if status.over_capacity:
        names = ", ".join(status.over_capacity[:10])
        more = len(status.over_capacity) - 10
        found.append(
            PageAlert(
                "over_capacity",
                f"{count(len(status.over_capacity), 'enabled user')} beyond the seats "
                "(refused at login): install a license or disable users.",
                (f"Over capacity: {names}" + (f" and {more} more" if more > 0 else ""),),
            )
        )
    if status.clock_warning:
        found.append(PageAlert("clock_set_back", status.clock_warning))
    took = service.takeover_report()
    if took is not None and not took.seen:
        attention = [took.report[i] for i in took.attention[:ATTENTION_SHOWN]]
        more = len(took.attention) - len(attention)
        details = [*attention, *([f"... and {more} more in the report"] if more else [])]
        found.append(
            PageAlert(
                "takeover_report",
                f"Takeover: {took.summary}. The report has {count(len(took.report), 'line')}; "
                f"read it with {REPORT_COMMAND}, then run {REPORT_COMMAND} --seen.",
                tuple(details),
            )
        )
    return found


def _sentence(text: str) -> str:
    text = text[:1].upper() + text[1:]
    return text if text.endswith(".") else text + "."


def license_lines(service: LicenseService) -> list[LicenseLine]:
    """Every installed license, in install order."""
    registry = service.registry
    lines = []
    for lic in service.licenses():
        reason = not_counting_reason(lic, registry.major)
        key = lic.key
        lines.append(
            LicenseLine(
                lic.license_id,
                key.kind.value if key is not None else "-",
                key.seats if key is not None and reason is None else None,
                reason,
            )
        )
    return lines


def standing(status: StatusView) -> str:
    """The evaluation's days left, or when support runs until."""
    if status.evaluation and status.evaluation_ends_at is not None:
        ends = status.evaluation_ends_at.date().isoformat()
        return f"Evaluation: {count(status.evaluation_days_left, 'day')} left (ends {ends})."
    parts = []
    if status.evaluation_expired:
        parts.append("The evaluation has ended.")
    if status.support_until is not None:
        parts.append(f"Support until {status.support_until.isoformat()}.")
    elif not status.evaluation:
        parts.append("No support date (no purchased license counts).")
    return " ".join(parts)


def seats_sentence(status: StatusView) -> str:
    """The status's summary without its support date, which the next line shows."""
    if status.support_until is None:
        return status.summary
    return status.summary.removesuffix(f"; support until {status.support_until.isoformat()}")


def numbers(status: StatusView) -> dict[str, Any]:
    """The numbers the page shows and its script refreshes, by field name."""
    state = gauge_state(status.users_enabled, status.seats_total, status.unlimited)
    return {
        "seats_used": status.seats_used,
        "seats_total": status.seats_total,
        "users_enabled": status.users_enabled,
        "unlimited": status.unlimited,
        "gauge": str(state.used) if state.unlimited else f"{state.used} of {state.total}",
        "gauge_title": state.title,
        "summary": seats_sentence(status),
        "standing": standing(status),
    }


def register(site: Site) -> None:
    """GET / and /status.json."""

    async def overview(request: web.Request, session: Session) -> web.StreamResponse:
        status = site.service.status()
        state = gauge_state(status.users_enabled, status.seats_total, status.unlimited)
        return site.render(
            request,
            session,
            "overview.html",
            title="Overview",
            status=status,
            numbers=numbers(status),
            gauge=gauge_svg(state),
            alerts=page_alerts(site.service, status),
            licenses=license_lines(site.service),
        )

    async def status_json(request: web.Request, session: Session) -> web.StreamResponse:
        status = site.service.status()
        alerts = [alert.kind for alert in page_alerts(site.service, status)]
        return web.json_response({**numbers(status), "alerts": alerts})

    site.get("/", overview, nav="Overview")
    site.get("/status.json", status_json)
