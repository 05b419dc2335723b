"""The RPC duration histograms: a duration on a bound falls into that bound's bucket (as
Prometheus' `le` says), the counts come out cumulative, and the admin change tally."""

from __future__ import annotations

import pytest

from officestatus_server.core.tally import ChangeResult, ChangeTally
from officestatus_server.core.timings import BUCKETS, CallTimes


@pytest.mark.parametrize(
    ("seconds", "first_bound"),
    [
        (0.0, 0.0001),
        (0.0001, 0.0001),
        (0.00010001, 0.00025),
        (0.003, 0.005),
        (10.0, 10.0),
        (10.5, float("inf")),
    ],
)
def test_a_duration_counts_in_every_bucket_from_its_own_bound_up(
    seconds: float, first_bound: float
) -> None:
    times = CallTimes()
    times.histogram("SeatService", "Login").observe(seconds)
    (found,) = times.snapshot()
    assert next(bound for bound, n in found.buckets if n == 1) == first_bound
    assert [bound for bound, n in found.buckets if n == 0] == [
        b for b in BUCKETS if b < first_bound
    ]
    assert found.count == 1
    assert found.sum == seconds


def test_each_method_has_its_own_histogram_listed_by_service_and_method() -> None:
    times = CallTimes()
    login = times.histogram("SeatService", "Login")
    assert times.histogram("SeatService", "Login") is login
    times.histogram("AdminService", "GetStatus").observe(0.002)
    login.observe(0.0002)
    login.observe(0.0003)
    found = times.snapshot()
    assert [(f.service, f.method, f.count) for f in found] == [
        ("AdminService", "GetStatus", 1),
        ("SeatService", "Login", 2),
    ]
    assert found[1].buckets[-1] == (float("inf"), 2)
    assert found[1].sum == pytest.approx(0.0005)


def test_admin_changes_are_counted_by_kind_and_result() -> None:
    tally = ChangeTally()
    tally.count("users.enable", ChangeResult.DONE)
    tally.count("users.enable", ChangeResult.REFUSED)
    tally.count("users.enable", ChangeResult.DONE)
    assert tally.totals() == {
        ("users.enable", ChangeResult.DONE): 2,
        ("users.enable", ChangeResult.REFUSED): 1,
    }
