"""The evaluation and the clock: how long a new installation evaluates, and when the
system clock counts as set back.

- A new installation evaluates for 30 days with no seat limit; an extension key bound to
  the installation moves the end; the first license with seats ends it for good.
- The evaluation runs through the whole last day (UTC) an extension names.
- A clock found more than an hour before the latest time seen was set back on purpose:
  the evaluation counts as ended from then on, for good.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from officestatus_server.core.keys import LicenseKey
from officestatus_server.core.model import AuditEntry, Change, ClockSetBack, Installation

EVALUATION_DAYS = 30
# How far the clock may step back (time zone slips, NTP corrections) before it counts as
# set back on purpose.
CLOCK_TOLERANCE = timedelta(hours=1)
_DAY = timedelta(days=1)
_ALWAYS_FROM = datetime.min.replace(tzinfo=UTC)
_ALWAYS_UNTIL = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Evaluation:
    """The evaluation at one moment."""

    active: bool
    ends_at: datetime | None
    days_left: int
    # Ran out of time with no license bought (not ended by a purchase).
    expired: bool
    # Ended because the system clock was set back.
    clock_set_back: bool = False

    @property
    def ended_by_purchase(self) -> bool:
        """The evaluation was ended by installing a license with seats."""
        return self.ends_at is None


def end_of(day: date) -> datetime:
    """An evaluation that runs until a date runs through that whole day (UTC)."""
    return datetime.combine(day + _DAY, time(), tzinfo=UTC)


def evaluation_end(installation: Installation, extensions: Iterable[LicenseKey]) -> datetime:
    """When the evaluation ends: 30 days after the first start, or the latest extension's
    last day if that is later."""
    end = installation.first_started_at + timedelta(days=EVALUATION_DAYS)
    for ext in extensions:
        assert ext.evaluation_until is not None
        end = max(end, end_of(ext.evaluation_until))
    return end


def evaluation_span(
    installation: Installation, end: datetime, now: datetime
) -> tuple[datetime, datetime, Evaluation]:
    """The evaluation at `now`, and from when until when (exclusive) that answer holds:
    it changes only at whole days before its end."""
    if installation.evaluation_ended_at is not None:
        ended = Evaluation(active=False, ends_at=None, days_left=0, expired=False)
        return _ALWAYS_FROM, _ALWAYS_UNTIL, ended
    if installation.clock_set_back is not None:
        set_back = Evaluation(False, end, 0, expired=True, clock_set_back=True)
        return _ALWAYS_FROM, _ALWAYS_UNTIL, set_back
    if now < end:
        # Whole days left, rounded up, exactly: (days - 1) days < end - now <= days.
        days = -((now - end) // _DAY)
        active = Evaluation(active=True, ends_at=end, days_left=days, expired=False)
        return end - days * _DAY, end - (days - 1) * _DAY, active
    return end, _ALWAYS_UNTIL, Evaluation(active=False, ends_at=end, days_left=0, expired=True)


def watch_clock(
    installation: Installation,
    high_water: datetime,
    now: datetime,
    tolerance: timedelta = CLOCK_TOLERANCE,
) -> ClockSetBack | None:
    """A newly found set-back of the clock: `now` is further before the latest time seen
    than the tolerance allows. None when there is none, or one was found already."""
    if installation.clock_set_back is None and now < high_water - tolerance:
        return ClockSetBack(seen=high_water, found=now)
    return None


def clock_set_back_change(set_back: ClockSetBack) -> Change:
    """Record a set-back for good, with an audit entry saying what was seen."""
    result = (
        f"clock set back from {set_back.seen.isoformat(timespec='minutes')} to "
        f"{set_back.found.isoformat(timespec='minutes')}; the evaluation counts as ended"
    )
    return Change(
        audit=AuditEntry(set_back.found, "clock.set_back", "system clock", result),
        clock_set_back=set_back,
    )
