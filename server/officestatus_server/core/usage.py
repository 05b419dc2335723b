"""The usage history: per UTC hour, how full the server was and how its logins went.

The service samples the enabled users, live sessions and seats now and then, and hands
over the logins its `LoginTally` counted since the last flush; a `UsageRecorder` keeps
the hours not yet written, and the store merges each batch into the hours it holds
(peaks by the larger, seats by the later, counts added). This module also turns hours
into days, finds the busiest hour, and forecasts when the seats run out. No I/O: `now`
is passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum

from officestatus_server.core.tally import LoginKey

# How long hours are kept: two years (older ones are deleted at a flush).
KEEP = timedelta(days=731)
# The forecast fits the daily peaks of this many days (today included), and needs at
# least this many of them with data.
FORECAST_WINDOW_DAYS = 30
FORECAST_MIN_DAYS = 7
# A run-out further away than this is no run-out worth a date.
FORECAST_HORIZON_DAYS = 3650

# A denied login's count key: the reason's name (as the wire names it) and the client's
# major release.
DenialKey = tuple[str, int]


def hour_of(moment: datetime) -> datetime:
    """The start of the UTC hour `moment` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# The logins a flush takes go into the hour it runs in, so one flush runs this long
# before each hour ends: the hour keeps its own logins (all but this last moment's).
HOUR_END_MARGIN = timedelta(seconds=0.25)


def next_flush_in(now: datetime, every: float) -> float:
    """Seconds from `now` to the next flush: `every` seconds, or sooner to flush just
    before the hour ends."""
    hour_end = hour_of(now) + timedelta(hours=1) - HOUR_END_MARGIN
    if hour_end <= now:
        hour_end += timedelta(hours=1)
    return min(every, (hour_end - now).total_seconds())


@dataclass(frozen=True)
class UsageHour:
    """One UTC hour of the history."""

    # The hour's start, UTC.
    hour: datetime
    peak_enabled: int = 0
    peak_sessions: int = 0
    # Seats at the hour's latest sample; None: no seat limit (the evaluation).
    seats: int | None = 0
    granted: int = 0
    # Denied logins by (reason, client release).
    denials: Mapping[DenialKey, int] = field(default_factory=dict)

    @property
    def denied(self) -> int:
        """Logins denied in this hour, for any reason."""
        return sum(self.denials.values())

    def then(self, later: UsageHour) -> UsageHour:
        """This hour merged with a later record of the same hour: the larger peaks, the
        later seats, the counts of both."""
        denials = dict(self.denials)
        for key, n in later.denials.items():
            denials[key] = denials.get(key, 0) + n
        return UsageHour(
            self.hour,
            max(self.peak_enabled, later.peak_enabled),
            max(self.peak_sessions, later.peak_sessions),
            later.seats,
            self.granted + later.granted,
            denials,
        )


def merge_hours(*batches: Iterable[UsageHour]) -> list[UsageHour]:
    """The hours of the batches merged, earlier batches first, in hour order."""
    merged: dict[datetime, UsageHour] = {}
    for batch in batches:
        for hour in batch:
            known = merged.get(hour.hour)
            merged[hour.hour] = hour if known is None else known.then(hour)
    return [merged[h] for h in sorted(merged)]


class UsageRecorder:
    """The hours observed since the last flush, in memory."""

    def __init__(self) -> None:
        self._hours: dict[datetime, UsageHour] = {}
        self._seats: int | None = 0

    def _add(self, record: UsageHour) -> None:
        known = self._hours.get(record.hour)
        self._hours[record.hour] = record if known is None else known.then(record)

    def observe(self, now: datetime, enabled: int, sessions: int, seats: int | None) -> None:
        """A sample: enabled users, live sessions and seats (None: no limit) at `now`."""
        self._seats = seats
        self._add(UsageHour(hour_of(now), enabled, sessions, seats))

    def add_logins(self, now: datetime, logins: Mapping[LoginKey, int]) -> None:
        """Logins counted since the last call, put in the hour of `now`."""
        if not logins:
            return
        granted = 0
        denials: dict[DenialKey, int] = {}
        for key, n in logins.items():
            if key.granted:
                granted += n
            else:
                denial = (key.reason.name, int(key.release))
                denials[denial] = denials.get(denial, 0) + n
        known = self._hours.get(hour_of(now))
        peak_enabled = known.peak_enabled if known else 0
        peak_sessions = known.peak_sessions if known else 0
        self._add(
            UsageHour(hour_of(now), peak_enabled, peak_sessions, self._seats, granted, denials)
        )

    def pending(self) -> list[UsageHour]:
        """The hours not yet written, in hour order (a copy)."""
        return [self._hours[h] for h in sorted(self._hours)]

    def take(self) -> list[UsageHour]:
        """The hours not yet written, for a flush; the recorder starts afresh."""
        taken = self.pending()
        self._hours = {}
        return taken

    def put_back(self, taken: Sequence[UsageHour]) -> None:
        """Undo a `take` whose batch could not be written: the next take includes it."""
        later = self._hours
        self._hours = {}
        for record in merge_hours(taken, later.values()):
            self._hours[record.hour] = record


# --- reading the history --------------------------------------------------------------


@dataclass(frozen=True)
class UsageDay:
    """One UTC day of the history: its hours' peaks and sums."""

    day: date
    peak_enabled: int
    peak_sessions: int
    # Seats at the day's latest recorded hour; None: no seat limit (the evaluation).
    seats: int | None
    granted: int
    denied: int
    # How many of its hours are recorded.
    hours: int


def daily(hours: Iterable[UsageHour]) -> list[UsageDay]:
    """The days that have recorded hours, in order."""
    by_day: dict[date, list[UsageHour]] = {}
    for record in sorted(hours, key=lambda r: r.hour):
        by_day.setdefault(record.hour.date(), []).append(record)
    return [
        UsageDay(
            day,
            max(r.peak_enabled for r in records),
            max(r.peak_sessions for r in records),
            records[-1].seats,
            sum(r.granted for r in records),
            sum(r.denied for r in records),
            len(records),
        )
        for day, records in sorted(by_day.items())
    ]


def busiest(hours: Iterable[UsageHour]) -> UsageHour | None:
    """The hour with the most live sessions at its peak (then the most logins, then the
    earliest); None without hours."""
    best: UsageHour | None = None
    for record in hours:
        if best is None or _load(record) > _load(best):
            best = record
    return best


def _load(record: UsageHour) -> tuple[int, int, float]:
    return (record.peak_sessions, record.granted + record.denied, -record.hour.timestamp())


def denials_by(hours: Iterable[UsageHour]) -> dict[DenialKey, int]:
    """Denied logins by (reason, client release) over the hours."""
    total: dict[DenialKey, int] = {}
    for record in hours:
        for key, n in record.denials.items():
            total[key] = total.get(key, 0) + n
    return dict(sorted(total.items()))


# --- the forecast -------------------------------------------------------------------------


class Outlook(StrEnum):
    """What the growth of the enabled users says about the seats."""

    # Growing: the seats run out around `Forecast.runs_out_on`.
    RUNS_OUT = "runs_out"
    # Every seat is taken at the latest day's peak.
    FULL = "full"
    # Flat or shrinking (or so slow that the seats last beyond the horizon).
    NOT_GROWING = "not_growing"
    # The evaluation: there is no seat limit to run out of.
    NO_SEAT_LIMIT = "no_seat_limit"
    # Fewer than FORECAST_MIN_DAYS days with data in the window.
    NOT_ENOUGH_HISTORY = "not_enough_history"


@dataclass(frozen=True)
class Forecast:
    """When the seats run out at the growth of the last FORECAST_WINDOW_DAYS days."""

    outlook: Outlook
    # Days of the window that have data.
    days_with_data: int
    # The fitted growth of the daily peak of enabled users, users per day.
    growth_per_day: float = 0.0
    seats: int | None = None
    runs_out_on: date | None = None


def forecast(days: Sequence[UsageDay], today: date) -> Forecast:
    """A least-squares line through the daily peaks of enabled users of the window (the
    last FORECAST_WINDOW_DAYS days up to `today`), and the day it reaches the seats of the
    latest day; only with at least FORECAST_MIN_DAYS days with data, and none while the
    latest day has no seat limit (the evaluation)."""
    first = today - timedelta(days=FORECAST_WINDOW_DAYS - 1)
    window = [d for d in days if first <= d.day <= today]
    n = len(window)
    if window and window[-1].seats is None:
        return Forecast(Outlook.NO_SEAT_LIMIT, n)
    if n < FORECAST_MIN_DAYS:
        return Forecast(Outlook.NOT_ENOUGH_HISTORY, n)
    latest = window[-1]
    seats = latest.seats
    assert seats is not None
    xs = [float((d.day - today).days) for d in window]
    ys = [float(d.peak_enabled) for d in window]
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    if latest.peak_enabled >= seats:
        return Forecast(Outlook.FULL, n, slope, seats)
    if slope <= 0:
        return Forecast(Outlook.NOT_GROWING, n, slope, seats)
    # The fitted line at today is `intercept`; it reaches the seats `ahead` days later.
    intercept = mean_y - slope * mean_x
    ahead = max(1, math.ceil((seats - intercept) / slope))
    if ahead > FORECAST_HORIZON_DAYS:
        return Forecast(Outlook.NOT_GROWING, n, slope, seats)
    return Forecast(Outlook.RUNS_OUT, n, slope, seats, today + timedelta(days=ahead))


# --- the report ----------------------------------------------------------------------------

# The days a report covers unless asked (and at most: the hours kept).
REPORT_DAYS = 30
MAX_REPORT_DAYS = KEEP.days


@dataclass(frozen=True)
class UsageReport:
    """What `officestatus-admin usage` shows: the days from `first` to `last` (UTC)."""

    first: date
    last: date
    days: list[UsageDay]
    denials: dict[DenialKey, int]
    busiest: UsageHour | None
    # Always over the last FORECAST_WINDOW_DAYS days, whatever the days asked.
    forecast: Forecast


def report_start(today: date, days: int) -> date:
    """The first day whose hours a report of `days` days up to `today` needs."""
    return min(today - timedelta(days=days - 1), today - timedelta(days=FORECAST_WINDOW_DAYS - 1))


def report(hours: Sequence[UsageHour], today: date, days: int) -> UsageReport:
    """The report of the `days` days up to `today` from the hours (at least those from
    `report_start` on)."""
    first = today - timedelta(days=days - 1)
    shown = [h for h in hours if first <= h.hour.date() <= today]
    every_day = daily(hours)
    return UsageReport(
        first,
        today,
        [d for d in every_day if first <= d.day <= today],
        denials_by(shown),
        busiest(shown),
        forecast(every_day, today),
    )
