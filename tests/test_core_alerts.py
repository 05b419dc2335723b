"""Seat and evaluation alerts, pure: in force while their condition holds, raised once
per crossing, cleared below, raised again at the next crossing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from officestatus_server.core.alerts import (
    EVALUATION_KIND,
    Alert,
    AlertState,
    alert_state,
    check_alerts,
    kinds,
)
from officestatus_server.core.evaluation import Evaluation
from officestatus_server.core.plans import plan_add_users
from tests.core_support import at, fresh, install, names
from tests.support import Vendor

NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
LICENSED = Evaluation(active=False, ends_at=None, days_left=0, expired=False)


def evaluating(days_left: int) -> Evaluation:
    ends = datetime(2026, 12, 11, tzinfo=UTC)
    return Evaluation(active=True, ends_at=ends, days_left=days_left, expired=False)


def seats(users: int, total: int = 35) -> AlertState:
    return AlertState(users, total, LICENSED)


@pytest.mark.parametrize(
    ("users", "total", "expected"),
    [
        (0, 35, []),
        (31, 35, []),  # 88.6%: below 90%
        (32, 35, ["seats_90"]),  # 91.4%
        (35, 35, ["seats_90", "seats_100"]),
        (40, 35, ["seats_90", "seats_100"]),
        (9, 10, ["seats_90"]),  # exactly 90%
        (0, 0, []),
        (3, 0, ["seats_90", "seats_100"]),  # no seats at all
    ],
)
def test_seat_alerts_are_in_force_from_their_threshold(
    users: int, total: int, expected: list[str]
) -> None:
    found = check_alerts(seats(users, total), (90, 100), {}, NOW)
    assert list(found.active) == expected
    assert [a.kind for a in found.raised] == expected


def test_messages_say_the_figures_and_what_to_do() -> None:
    found = check_alerts(seats(32), (90, 100), {}, NOW).active
    assert found["seats_90"].message == (
        "32 of 35 seats in use (91%), the 90% seat alert: install a license or disable users"
    )
    assert found["seats_90"].threshold == 90
    over = check_alerts(seats(40), (110,), {}, NOW).active["seats_110"]
    assert over.message.startswith("40 users enabled for 35 seats (114%), 5 over capacity")
    none = check_alerts(seats(3, 0), (90,), {}, NOW).active["seats_90"]
    assert none.message == "3 users enabled and no seats (the 90% seat alert): install a license"


def test_a_crossing_raises_once_then_the_alert_stays_with_its_time() -> None:
    first = check_alerts(seats(32), (90, 100), {}, NOW)
    later = NOW + timedelta(hours=1)
    again = check_alerts(seats(33), (90, 100), first.active, later)
    assert again.raised == ()
    assert again.active["seats_90"].since == NOW
    assert "33 of 35" in again.active["seats_90"].message


def test_dropping_below_clears_and_a_later_crossing_raises_again() -> None:
    up = check_alerts(seats(35), (90, 100), {}, NOW)
    down = check_alerts(seats(34), (90, 100), up.active, NOW + timedelta(minutes=1))
    assert list(down.active) == ["seats_90"]
    assert down.raised == ()
    below = check_alerts(seats(10), (90, 100), down.active, NOW + timedelta(minutes=2))
    assert below.active == {}
    assert below.raised == ()
    back = NOW + timedelta(minutes=3)
    up_again = check_alerts(seats(35), (90, 100), below.active, back)
    assert [a.kind for a in up_again.raised] == ["seats_90", "seats_100"]
    assert all(a.since == back for a in up_again.raised)


def test_no_seat_alert_during_the_evaluation_which_has_no_seat_limit() -> None:
    assert check_alerts(AlertState(50, 0, evaluating(20)), (90, 100), {}, NOW).active == {}


@pytest.mark.parametrize(("days_left", "raised"), [(8, False), (7, True), (1, True)])
def test_the_evaluations_last_7_days_raise_an_alert(days_left: int, raised: bool) -> None:
    found = check_alerts(AlertState(3, 0, evaluating(days_left)), (90, 100), {}, NOW)
    assert (EVALUATION_KIND in found.active) is raised
    if raised:
        alert = found.active[EVALUATION_KIND]
        assert alert.threshold == 7
        assert alert.message == (
            f"the evaluation ends in {days_left} day{'s' if days_left > 1 else ''} "
            "(2026-12-11): install a license"
        )


def test_the_evaluation_alert_is_raised_once_and_clears_when_a_license_ends_it() -> None:
    seven = check_alerts(AlertState(3, 0, evaluating(7)), (90,), {}, NOW)
    six = check_alerts(AlertState(3, 0, evaluating(6)), (90,), seven.active, NOW)
    assert six.raised == ()
    assert "in 6 days" in six.active[EVALUATION_KIND].message
    bought = check_alerts(AlertState(3, 25, LICENSED), (90,), six.active, NOW)
    assert bought.active == {}


def test_the_state_is_read_from_the_registry(vendor: Vendor) -> None:
    registry = install(vendor, fresh(), vendor.key(10), at(1))
    registry = registry.apply(plan_add_users(registry, names(9), True, at(2)))
    assert alert_state(registry, at(3)) == AlertState(9, 10, LICENSED)
    evaluation = alert_state(fresh(), at(23.5)).evaluation
    assert evaluation.active
    assert evaluation.days_left == 7


def test_kinds_lists_every_threshold_once_then_the_evaluation() -> None:
    assert kinds([100, 90, 90]) == ["seats_90", "seats_100", EVALUATION_KIND]


_states = st.builds(
    AlertState,
    st.integers(0, 200),
    st.integers(0, 100),
    st.one_of(st.just(LICENSED), st.integers(1, 30).map(evaluating)),
)


@given(
    st.lists(_states, min_size=1, max_size=20),
    st.lists(st.integers(1, 1000), min_size=1, max_size=4),
)
def test_each_alert_is_raised_exactly_once_per_crossing(
    states: list[AlertState], thresholds: list[int]
) -> None:
    previous: dict[str, Alert] = {}
    for step, state in enumerate(states):
        now = NOW + timedelta(minutes=step)
        found = check_alerts(state, thresholds, previous, now)
        raised = {a.kind for a in found.raised}
        # Raised: exactly the alerts in force now that were not before.
        assert raised == set(found.active) - set(previous)
        assert all(found.active[k].since == now for k in raised)
        assert all(found.active[k].since == previous[k].since for k in set(found.active) - raised)
        # A seat alert is in force exactly when its threshold's share is reached.
        for t in thresholds:
            reached = (
                not state.evaluation.active
                and state.users_enabled > 0
                and state.users_enabled * 100 >= t * state.seats
            )
            assert (f"seats_{t}" in found.active) is reached
        previous = dict(found.active)
