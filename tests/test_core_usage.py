"""The usage history's pure core: hours recorded and merged, days, the busiest hour, and
the forecast of when the seats run out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from officestatus.wire import DenyReason
from officestatus_server.core.tally import LoginKey
from officestatus_server.core.usage import (
    Forecast,
    Outlook,
    UsageDay,
    UsageHour,
    UsageRecorder,
    busiest,
    daily,
    denials_by,
    forecast,
    hour_of,
    merge_hours,
    next_flush_in,
)
from officestatus_server.core.versions import Release

NINE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
TODAY = date(2027, 1, 31)


def test_an_hour_is_its_utc_start() -> None:
    local = datetime(2026, 11, 2, 10, 59, 59, tzinfo=UTC).astimezone()
    assert hour_of(local) == datetime(2026, 11, 2, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "every", "wait"),
    [
        (NINE, 60, 60),
        # Flushed just before ten, so nine's logins stay nine's.
        (NINE + timedelta(minutes=59, seconds=30), 60, 29.75),
        (NINE + timedelta(minutes=59, seconds=59.75), 60, 60),
        (NINE + timedelta(minutes=59, seconds=59.9), 3600, 3599.85),
    ],
)
def test_a_flush_runs_every_interval_and_just_before_each_hour_ends(
    now: datetime, every: float, wait: float
) -> None:
    assert next_flush_in(now, every) == pytest.approx(wait)


def test_the_recorder_keeps_each_hours_peaks_last_seats_and_logins() -> None:
    recorder = UsageRecorder()
    recorder.observe(NINE + timedelta(minutes=1), enabled=3, sessions=5, seats=10)
    recorder.observe(NINE + timedelta(minutes=2), enabled=4, sessions=2, seats=12)
    recorder.add_logins(
        NINE + timedelta(minutes=3),
        {
            LoginKey(DenyReason.UNSPECIFIED, Release.V6): 7,
            LoginKey(DenyReason.OVER_CAPACITY, Release.V5): 2,
            LoginKey(DenyReason.OVER_CAPACITY, Release.V3): 1,
        },
    )
    recorder.observe(NINE + timedelta(hours=1), enabled=1, sessions=0, seats=None)
    assert recorder.pending() == [
        UsageHour(NINE, 4, 5, 12, 7, {("OVER_CAPACITY", 5): 2, ("OVER_CAPACITY", 3): 1}),
        UsageHour(NINE + timedelta(hours=1), 1, 0, None),
    ]


def test_a_batch_put_back_is_taken_again_with_what_came_since() -> None:
    recorder = UsageRecorder()
    recorder.observe(NINE, enabled=2, sessions=1, seats=5)
    recorder.add_logins(NINE, {LoginKey(DenyReason.UNSPECIFIED, Release.V6): 3})
    taken = recorder.take()
    assert recorder.take() == []
    recorder.observe(NINE, enabled=1, sessions=4, seats=6)
    recorder.add_logins(NINE, {LoginKey(DenyReason.UNSPECIFIED, Release.V6): 1})
    recorder.put_back(taken)  # the write failed
    assert recorder.take() == [UsageHour(NINE, 2, 4, 6, 4)]


def test_hours_merge_by_larger_peaks_later_seats_and_summed_counts() -> None:
    a = UsageHour(NINE, 5, 1, 10, 2, {("USER_UNKNOWN", 4): 1})
    b = UsageHour(NINE, 3, 4, None, 1, {("USER_UNKNOWN", 4): 2, ("NOT_LICENSED", 6): 1})
    other = UsageHour(NINE + timedelta(hours=2), 1, 1, 10)
    assert merge_hours([other, a], [b]) == [
        UsageHour(NINE, 5, 4, None, 3, {("USER_UNKNOWN", 4): 3, ("NOT_LICENSED", 6): 1}),
        other,
    ]


def test_days_busiest_hour_and_denials_of_the_hours() -> None:
    hours = [
        UsageHour(NINE, 4, 2, 10, 5, {("OVER_CAPACITY", 6): 1}),
        UsageHour(NINE + timedelta(hours=3), 6, 3, 12, 1),
        UsageHour(NINE + timedelta(days=1), 2, 3, 12, 9, {("OVER_CAPACITY", 6): 2}),
    ]
    assert daily(hours) == [
        UsageDay(date(2026, 11, 2), 6, 3, 12, 6, 1, 2),
        UsageDay(date(2026, 11, 3), 2, 3, 12, 9, 2, 1),
    ]
    # Three sessions at two hours: the one with more logins.
    assert busiest(hours) == hours[2]
    assert busiest([]) is None
    assert denials_by(hours) == {("OVER_CAPACITY", 6): 3}


def _days(peaks: list[int], seats: int | None = 50, end: date = TODAY) -> list[UsageDay]:
    first = end - timedelta(days=len(peaks) - 1)
    return [
        UsageDay(first + timedelta(days=i), peak, 0, seats, 0, 0, 24)
        for i, peak in enumerate(peaks)
    ]


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        # One more user a day, 40 today, 50 seats: the line reaches 50 in ten days.
        (
            _days(list(range(11, 41))),
            Forecast(Outlook.RUNS_OUT, 30, 1.0, 50, TODAY + timedelta(days=10)),
        ),
        # Half a user a day from 30: the fitted line (39.7 today) reaches 50 in 21 days.
        (
            _days([30 + i // 2 for i in range(20)]),
            Forecast(Outlook.RUNS_OUT, 20, pytest.approx(0.5, abs=0.01), 50, date(2027, 2, 22)),  # type: ignore[arg-type]
        ),
        # Flat or shrinking: no date.
        (_days([20] * 10), Forecast(Outlook.NOT_GROWING, 10, 0.0, 50)),
        (_days(list(range(30, 20, -1))), Forecast(Outlook.NOT_GROWING, 10, -1.0, 50)),
        # Every seat taken today.
        (_days(list(range(41, 51))), Forecast(Outlook.FULL, 10, 1.0, 50)),
        # The evaluation has no seat limit.
        (_days(list(range(10)), seats=None), Forecast(Outlook.NO_SEAT_LIMIT, 10)),
        # Six days are not enough; days before the window do not count.
        (_days(list(range(6))), Forecast(Outlook.NOT_ENOUGH_HISTORY, 6)),
        (
            _days(list(range(20)), end=TODAY - timedelta(days=27)) + _days([30] * 3),
            Forecast(Outlook.NOT_ENOUGH_HISTORY, 6),
        ),
        # A user a year: beyond the horizon, as good as not growing.
        (
            _days([10] * 29 + [11]),
            Forecast(Outlook.NOT_GROWING, 30, pytest.approx(0.0067, abs=0.001), 1000),  # type: ignore[arg-type]
        ),
    ],
)
def test_the_forecast_fits_the_last_30_days_of_peak_enabled_users(
    days: list[UsageDay], expected: Forecast
) -> None:
    if expected.seats == 1000:
        days = [UsageDay(d.day, d.peak_enabled, 0, 1000, 0, 0, 24) for d in days]
    assert forecast(days, TODAY) == expected


def test_days_with_gaps_still_fit_by_their_dates() -> None:
    # Every other day recorded, two users a day apart: one a day.
    days = [UsageDay(TODAY - timedelta(days=2 * i), 40 - 2 * i, 0, 45, 0, 0, 1) for i in range(8)]
    days.reverse()
    result = forecast(days, TODAY)
    assert result.outlook is Outlook.RUNS_OUT
    assert result.growth_per_day == pytest.approx(1.0)
    assert result.runs_out_on == TODAY + timedelta(days=5)
