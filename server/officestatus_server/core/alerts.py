"""Seat and evaluation alerts: which are in force, and which were just raised.

- A seat alert is in force while the enabled users reach a threshold's share of the
  seats (90% and 100% by default; thresholds above 100% warn of users over capacity).
  No seat alert during the evaluation, which has no seat limit; with no seats at all,
  every threshold is reached once a user is enabled.
- The evaluation alert is in force during the evaluation's last 7 days.
- An alert is raised once, when it comes into force; it keeps the time it was raised
  while it stays in force, and clears when its condition no longer holds, so a later
  crossing raises it again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from officestatus_server.core.evaluation import Evaluation
from officestatus_server.core.registry import Registry
from officestatus_server.core.texts import count

DEFAULT_SEAT_THRESHOLDS = (90, 100)
# Thresholds a setting may name, in percent of the seats.
THRESHOLD_MIN = 1
THRESHOLD_MAX = 1000
# The evaluation's last days, warned of.
EVALUATION_WARNING_DAYS = 7
EVALUATION_KIND = "evaluation_ending"


def seat_kind(threshold: int) -> str:
    """The kind of a seat alert: "seats_90"."""
    return f"seats_{threshold}"


def kinds(thresholds: Iterable[int]) -> list[str]:
    """Every kind of alert these thresholds give, in order: the seat alerts, then the
    evaluation's."""
    return [*(seat_kind(t) for t in sorted(set(thresholds))), EVALUATION_KIND]


@dataclass(frozen=True)
class AlertState:
    """What the alerts are decided on, at one moment."""

    users_enabled: int
    seats: int
    evaluation: Evaluation


@dataclass(frozen=True)
class Alert:
    """An alert in force: its kind, what to do about it, since when, and its threshold
    (percent of the seats, or the evaluation's warning days)."""

    kind: str
    message: str
    since: datetime
    threshold: int


@dataclass(frozen=True)
class AlertCheck:
    """The alerts in force after a check (by kind, in kinds' order), and those the check
    raised (not in force before)."""

    active: Mapping[str, Alert]
    raised: tuple[Alert, ...]


def _percent(users: int, seats: int) -> int:
    """Users as a whole share of the seats, rounded down (so "90%" is never shown for
    89.6%)."""
    return users * 100 // seats


def _seat_message(state: AlertState, threshold: int) -> str:
    users, seats = state.users_enabled, state.seats
    if seats == 0:
        return (
            f"{count(users, 'user')} enabled and no seats (the {threshold}% seat alert): "
            "install a license"
        )
    if users <= seats:
        use = f"{users} of {seats} seats in use ({_percent(users, seats)}%)"
    else:
        use = (
            f"{count(users, 'user')} enabled for {count(seats, 'seat')} "
            f"({_percent(users, seats)}%), {users - seats} over capacity"
        )
    return f"{use}, the {threshold}% seat alert: install a license or disable users"


def _seat_reached(state: AlertState, threshold: int) -> bool:
    if state.evaluation.active or state.users_enabled == 0:
        return False
    # Whole numbers only: users / seats >= threshold / 100.
    return state.users_enabled * 100 >= threshold * state.seats


def _evaluation_message(evaluation: Evaluation) -> str:
    assert evaluation.ends_at is not None
    return (
        f"the evaluation ends in {count(evaluation.days_left, 'day')} "
        f"({evaluation.ends_at.date().isoformat()}): install a license"
    )


def _in_force(state: AlertState, thresholds: Iterable[int]) -> list[tuple[str, str, int]]:
    """(kind, message, threshold) of every alert whose condition holds."""
    found = [
        (seat_kind(t), _seat_message(state, t), t)
        for t in sorted(set(thresholds))
        if _seat_reached(state, t)
    ]
    evaluation = state.evaluation
    if evaluation.active and evaluation.days_left <= EVALUATION_WARNING_DAYS:
        found.append((EVALUATION_KIND, _evaluation_message(evaluation), EVALUATION_WARNING_DAYS))
    return found


def check_alerts(
    state: AlertState,
    thresholds: Iterable[int],
    previous: Mapping[str, Alert],
    now: datetime,
) -> AlertCheck:
    """The alerts in force in `state`, each with its message for the state now; those
    not in `previous` are raised at `now`, the others keep the time they were raised."""
    active: dict[str, Alert] = {}
    raised: list[Alert] = []
    for kind, message, threshold in _in_force(state, thresholds):
        before = previous.get(kind)
        alert = Alert(kind, message, before.since if before else now, threshold)
        active[kind] = alert
        if before is None:
            raised.append(alert)
    return AlertCheck(active, tuple(raised))


def alert_state(registry: Registry, now: datetime) -> AlertState:
    """What the alerts are decided on, in the registry at `now`."""
    return AlertState(registry.enabled_count(), registry.seats, registry.evaluation(now))
