"""officestatus-admin usage: how full the server has been, who was refused, and when the
seats run out at the present growth.

The command and its text, apart from admin_cli.py: `add_commands` adds it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from officestatus_client import _render
from officestatus_client._cli_errors import UsageError
from officestatus_client._client import AdminClient
from officestatus_client._models import Usage, UsageDenials, UsageForecast


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add `usage` to the admin CLI's commands."""
    usage = commands.add_parser(
        "usage",
        help="daily peaks of enabled users and live sessions against the seats, denials by "
        "reason, the busiest hour, and when the seats run out",
    )
    usage.add_argument(
        "--days",
        type=int,
        default=30,
        metavar="N",
        help="the last N days (UTC), today included (default 30, at most 731)",
    )
    usage.set_defaults(run=_usage)


async def _usage(args: argparse.Namespace, client: AdminClient) -> str:
    if args.days < 1:
        raise UsageError(f"--days must be 1 or more (it is {args.days})")
    usage = await client.usage(args.days)
    return _render.document(usage) if args.json else usage_text(usage)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun if n == 1 else noun + 's'}"


def usage_text(usage: Usage) -> str:
    """The days as a table, then the denials, the busiest hour and the forecast."""
    span = (usage.last_date - usage.first_date).days + 1
    lines = [
        f"Usage from {usage.first_date} to {usage.last_date} (UTC days; "
        f"{_count(span, 'day')}, {len(usage.days)} with data)."
    ]
    if usage.flush_seconds == 0:
        lines.append(
            "The server keeps no usage history now (--usage-flush-seconds 0); what is shown "
            "was recorded before."
        )
    if not usage.days:
        lines.append("No usage recorded in these days.")
    else:
        rows = [
            (
                day.date.isoformat(),
                f"{day.peak_enabled_users:,}",
                f"{day.peak_live_sessions:,}",
                "no limit" if day.seats is None else f"{day.seats:,}",
                f"{day.logins_granted:,}",
                f"{day.logins_denied:,}",
            )
            for day in usage.days
        ]
        lines += [
            "",
            _render.table(
                ("DATE", "PEAK ENABLED", "PEAK SESSIONS", "SEATS", "GRANTED", "DENIED"), rows
            ),
            "",
        ]
        lines += [denials_text(usage.denials), ""]
    hour = usage.busiest_hour
    if hour is not None:
        lines.append(
            f"Busiest hour: {hour.hour:%Y-%m-%d %H:00} UTC, "
            f"{_count(hour.peak_live_sessions, 'live session')}, "
            f"{_count(hour.peak_enabled_users, 'enabled user')}, "
            f"{_count(hour.logins_granted + hour.logins_denied, 'login')}."
        )
    lines.append(forecast_text(usage.forecast))
    return "\n".join(lines)


def denials_text(denials: Sequence[UsageDenials]) -> str:
    """The denials by reason, each with its client releases."""
    if not denials:
        return "No login was denied."
    by_reason: dict[str, dict[int, int]] = {}
    for d in denials:
        releases = by_reason.setdefault(d.reason, {})
        releases[d.client_release] = releases.get(d.client_release, 0) + d.count
    rows = sorted(
        ((sum(r.values()), reason, r) for reason, r in by_reason.items()),
        key=lambda row: (-row[0], row[1]),
    )
    table = _render.table(
        ("REASON", "DENIED", "BY CLIENT RELEASE"),
        [
            (reason, f"{total:,}", ", ".join(f"{v}.x: {n:,}" for v, n in sorted(r.items())))
            for total, reason, r in rows
        ],
        indent="  ",
    )
    return "Denied logins by reason:\n" + table


def forecast_text(f: UsageForecast) -> str:
    """One line: when the seats run out, or why there is no date."""
    window = f"the last {f.window_days} days"
    growth = f"{f.growth_per_day:+.2f} enabled users a day"
    if f.outlook == "runs_out":
        return (
            f"Forecast: at the growth of {window} ({growth}), the {f.seats:,} seats run out "
            f"around {f.runs_out_on}."
        )
    if f.outlook == "full":
        return (
            f"Forecast: all {f.seats:,} seats are taken at the latest day's peak ({growth} "
            f"over {window}); install more seats before enabling more users."
        )
    if f.outlook == "not_growing" and f.growth_per_day > 0:
        return (
            f"Forecast: growing too slowly over {window} ({growth}) for the seats to run "
            "out within ten years."
        )
    if f.outlook == "not_growing":
        return f"Forecast: not growing over {window} ({growth}): the seats do not run out."
    if f.outlook == "no_seat_limit":
        return "Forecast: none during the evaluation, which has no seat limit."
    if f.outlook == "not_enough_history":
        return (
            f"Forecast: not yet; it needs {f.min_days} days with data in {window}, there "
            f"{'is' if f.days_with_data == 1 else 'are'} {f.days_with_data}."
        )
    return f"Forecast: {f.outlook}."
