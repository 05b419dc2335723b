"""The usage report as the admin protocol's GetUsageResponse."""

from __future__ import annotations

from officestatus.admin import admin_service_pb2 as pb
from officestatus_server.core.usage import (
    FORECAST_MIN_DAYS,
    FORECAST_WINDOW_DAYS,
    UsageDay,
    UsageHour,
    UsageReport,
)


def _day(day: UsageDay) -> pb.UsageDay:
    return pb.UsageDay(
        date=day.day.isoformat(),
        peak_enabled_users=day.peak_enabled,
        peak_live_sessions=day.peak_sessions,
        seats=day.seats or 0,
        unlimited=day.seats is None,
        logins_granted=day.granted,
        logins_denied=day.denied,
        hours_recorded=day.hours,
    )


def _hour(hour: UsageHour) -> pb.UsageHour:
    return pb.UsageHour(
        hour=hour.hour.isoformat(),
        peak_enabled_users=hour.peak_enabled,
        peak_live_sessions=hour.peak_sessions,
        logins_granted=hour.granted,
        logins_denied=hour.denied,
    )


def usage_message(report: UsageReport, flush_seconds: float) -> pb.GetUsageResponse:
    """The report, and how often the server writes the history down (0: it keeps none)."""
    outlook = report.forecast
    return pb.GetUsageResponse(
        days=[_day(d) for d in report.days],
        denials=[
            pb.UsageDenials(reason=reason, client_release=release, count=n)
            for (reason, release), n in report.denials.items()
        ],
        busiest_hour=_hour(report.busiest) if report.busiest is not None else None,
        forecast=pb.UsageForecast(
            outlook=outlook.outlook.value,
            runs_out_on=outlook.runs_out_on.isoformat() if outlook.runs_out_on else "",
            growth_per_day=outlook.growth_per_day,
            days_with_data=outlook.days_with_data,
            window_days=FORECAST_WINDOW_DAYS,
            min_days=FORECAST_MIN_DAYS,
            seats=outlook.seats or 0,
        ),
        flush_seconds=round(flush_seconds),
        first_date=report.first.isoformat(),
        last_date=report.last.isoformat(),
    )
