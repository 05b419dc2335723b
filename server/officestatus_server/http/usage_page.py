"""The status page's Usage page: the last 30 days of the usage history as two charts, a
table and a CSV file, made from the hours the service reads (pure functions; the route
that reads them is at the end)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from aiohttp import web
from markupsafe import Markup

from officestatus_server.core.usage import (
    REPORT_DAYS,
    UsageDay,
    UsageHour,
    UsageReport,
    report,
    report_start,
)
from officestatus_server.http.charts import Line, Stroke, bar_chart, line_chart
from officestatus_server.http.web import Session, Site
from officestatus_server.service import LicenseService

# The days the page shows, today (UTC) included.
DAYS = REPORT_DAYS

CSV_FIELDS = (
    "date",
    "peak_enabled_users",
    "peak_live_sessions",
    "seats",
    "logins_granted",
    "logins_denied",
    "hours_recorded",
)


@dataclass(frozen=True)
class DayRow:
    """One day of the table, whether the history has it or not."""

    day: date
    # None: no hour of the day is recorded.
    data: UsageDay | None
    # Denied logins of the day by reason.
    denials: dict[str, int]

    @property
    def seats_text(self) -> str:
        """The seats as the table shows them: "no limit" during the evaluation."""
        if self.data is None:
            return ""
        return "no limit" if self.data.seats is None else f"{self.data.seats:,}"


@dataclass(frozen=True)
class ReasonRow:
    """Denied logins of one reason over the days, and by client release."""

    reason: str
    total: int
    by_release: tuple[tuple[int, int], ...]

    @property
    def releases_text(self) -> str:
        """ "5.x: 3, 6.x: 1", as the CLI writes it."""
        return ", ".join(f"{release}.x: {n:,}" for release, n in self.by_release)


@dataclass(frozen=True)
class UsageView:
    """Everything the Usage page and its CSV show."""

    first: date
    last: date
    rows: list[DayRow]
    reasons: list[ReasonRow]
    days_with_data: int
    # Every reason that denied a login in the days, in the CSV's column order.
    reason_columns: list[str]


def hours_since(today: date) -> datetime:
    """The first hour the page needs: the report's start for DAYS days up to `today`."""
    return datetime.combine(report_start(today, DAYS), datetime.min.time(), UTC)


def usage_view(hours: Sequence[UsageHour], today: date) -> UsageView:
    """The DAYS days up to `today` (UTC) from the history's hours."""
    rep: UsageReport = report(hours, today, DAYS)
    by_day = {d.day: d for d in rep.days}
    denials: dict[date, dict[str, int]] = {}
    for hour in hours:
        day = hour.hour.astimezone(UTC).date()
        if rep.first <= day <= rep.last:
            counts = denials.setdefault(day, {})
            for (reason, _release), n in hour.denials.items():
                counts[reason] = counts.get(reason, 0) + n
    rows = [
        DayRow(day, by_day.get(day), dict(sorted(denials.get(day, {}).items())))
        for day in _days(rep.first, rep.last)
    ]
    return UsageView(
        rep.first,
        rep.last,
        rows,
        reason_rows(rep.denials.items()),
        len(rep.days),
        sorted({reason for reason, _ in rep.denials}),
    )


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def reason_rows(denials: Iterable[tuple[tuple[str, int], int]]) -> list[ReasonRow]:
    """Denials by (reason, release) as one row per reason, the most denials first."""
    by_reason: dict[str, dict[int, int]] = {}
    for (reason, release), n in denials:
        releases = by_reason.setdefault(reason, {})
        releases[release] = releases.get(release, 0) + n
    rows = [
        ReasonRow(reason, sum(r.values()), tuple(sorted(r.items())))
        for reason, r in by_reason.items()
    ]
    return sorted(rows, key=lambda row: (-row.total, row.reason))


def peaks_chart(view: UsageView) -> str:
    """The daily peaks of enabled users and live sessions against the seats, as SVG."""

    def values(pick: str) -> list[int | None]:
        return [None if r.data is None else getattr(r.data, pick) for r in view.rows]

    seats = [None if r.data is None else r.data.seats for r in view.rows]
    unlimited = any(r.data is not None and r.data.seats is None for r in view.rows)
    description = (
        f"Daily peaks from {view.first} to {view.last} (UTC), {view.days_with_data} days "
        "with data: enabled users (solid line, dots), live sessions (dashed line, squares) "
        "and seats (dotted line, short bars)."
    )
    if unlimited:
        description += " Days of the evaluation have no seat limit and no seats line."
    return line_chart(
        "Daily peak enabled users and live sessions against seats",
        description + " The table below has every number.",
        [r.day.strftime("%m-%d") for r in view.rows],
        [
            Line("Enabled users", values("peak_enabled"), Stroke.SOLID),
            Line("Live sessions", values("peak_sessions"), Stroke.DASHED),
            Line("Seats", seats, Stroke.DOTTED),
        ],
        chart_id="peaks",
    )


def denials_chart(view: UsageView) -> str:
    """Denied logins by reason over the days, as SVG bars."""
    total = sum(r.total for r in view.reasons)
    return bar_chart(
        "Denied logins by reason",
        f"{total:,} logins denied from {view.first} to {view.last} (UTC), one bar per "
        "reason, the most first. The table below has every number.",
        [(r.reason, r.total) for r in view.reasons],
        chart_id="denials",
    )


def usage_csv(view: UsageView) -> str:
    """The days as CSV: one row a day (empty cells where the history has no hour of
    it, `seats` empty and `no_seat_limit` 1 during the evaluation), then a column of
    denied logins per reason."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(
        [*CSV_FIELDS, "no_seat_limit", *(f"denied_{reason}" for reason in view.reason_columns)]
    )
    for row in view.rows:
        d = row.data
        if d is None:
            cells: list[object] = [row.day.isoformat(), "", "", "", "", "", 0, ""]
            cells += ["" for _ in view.reason_columns]
        else:
            cells = [
                d.day.isoformat(),
                d.peak_enabled,
                d.peak_sessions,
                "" if d.seats is None else d.seats,
                d.granted,
                d.denied,
                d.hours,
                int(d.seats is None),
            ]
            cells += [row.denials.get(reason, 0) for reason in view.reason_columns]
        writer.writerow(cells)
    return out.getvalue()


# --- the routes ---------------------------------------------------------------------------


def register(site: Site) -> None:
    """GET /usage (the charts and tables) and /usage.csv (the same days as a file)."""

    async def read(service: LicenseService) -> UsageView:
        today = service.now().astimezone(UTC).date()
        hours, now = await service.usage_hours(hours_since(today))
        return usage_view(hours, now.astimezone(UTC).date())

    async def usage(request: web.Request, session: Session) -> web.StreamResponse:
        view = await read(site.service)
        return site.render(
            request,
            session,
            "usage.html",
            title="Usage",
            view=view,
            # SVG text whose every label was escaped as it was drawn.
            peaks=Markup(peaks_chart(view)),
            denials=Markup(denials_chart(view)),
            keeps_history=site.service.usage_flush_seconds > 0,
        )

    async def usage_file(request: web.Request, session: Session) -> web.StreamResponse:
        view = await read(site.service)
        name = f"officestatus-usage-{view.first}-to-{view.last}.csv"
        return web.Response(
            text=usage_csv(view),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    site.get("/usage", usage, nav="Usage")
    site.get("/usage.csv", usage_file)
