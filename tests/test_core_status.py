"""The status an admin reads: every number, and the one-line summary."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import pytest

from officestatus_server.core.keys import LicenseKind
from officestatus_server.core.licensing import (
    Counted,
    NotCounted,
    Registry,
    plan_add_users,
    plan_disable,
    plan_remove,
)
from officestatus_server.core.model import Installation, InstalledLicense
from officestatus_server.core.status import status_view
from tests.core_support import HERE, at, fresh, install, names, stored
from tests.support import START, Vendor


def add(registry: Registry, users: Iterable[str], now: datetime) -> Registry:
    # Not tests.core_support.add: one by one, so the enable order is the list's order.
    for name in users:
        registry = registry.apply(plan_add_users(registry, [name], True, now))
    return registry


# --- the states an admin sees -------------------------------------------------------------------


def _evaluation(vendor: Vendor) -> tuple[Registry, datetime]:
    return add(fresh(), names(3), at(1)), at(2)


def _evaluation_last_day(vendor: Vendor) -> tuple[Registry, datetime]:
    return add(fresh(), names(1), at(1)), at(29.5)


def _evaluation_expired(vendor: Vendor) -> tuple[Registry, datetime]:
    return fresh(), at(31)


def _licensed(vendor: Vendor) -> tuple[Registry, datetime]:
    registry = install(vendor, fresh(), vendor.key(25, license_id="L-25"), at(1))
    registry = install(vendor, registry, vendor.key(10, license_id="L-10"), at(1))
    return add(registry, names(3), at(2)), at(3)


def _full(vendor: Vendor) -> tuple[Registry, datetime]:
    registry = install(vendor, fresh(), vendor.key(25, license_id="L-25"), at(1))
    return add(registry, names(25), at(2)), at(3)


def _over_capacity(vendor: Vendor) -> tuple[Registry, datetime]:
    registry = install(vendor, fresh(), vendor.key(25, license_id="L-25"), at(1))
    registry = install(vendor, registry, vendor.key(10, license_id="L-10"), at(1))
    registry = add(registry, names(30), at(2))
    registry = registry.apply(plan_remove(registry, "L-10", True, at(3)))
    return registry, at(4)


def _one_over(vendor: Vendor) -> tuple[Registry, datetime]:
    registry = install(vendor, fresh(), vendor.key(2, license_id="L-2"), at(1))
    registry = install(vendor, registry, vendor.key(1, license_id="L-1"), at(1))
    registry = add(registry, names(3), at(2))
    return registry.apply(plan_remove(registry, "L-1", True, at(3))), at(4)


def _purchase_removed(vendor: Vendor) -> tuple[Registry, datetime]:
    registry = install(vendor, fresh(), vendor.key(25, license_id="L-25"), at(1))
    return registry.apply(plan_remove(registry, "L-25", False, at(2))), at(3)


STATES = [
    pytest.param(
        _evaluation,
        {
            "seats_total": 0,
            "seats_used": 3,
            "users_enabled": 3,
            "over_capacity": (),
            "evaluation": True,
            "evaluation_days_left": 28,
            "evaluation_ends_at": at(30),
            "evaluation_expired": False,
            "unlimited": True,
            "support_until": None,
            "counting": (),
        },
        "evaluation, 28 days left: 3 users enabled, no seat limit",
        id="evaluation",
    ),
    pytest.param(
        _evaluation_last_day,
        {"evaluation": True, "evaluation_days_left": 1, "users_enabled": 1, "unlimited": True},
        "evaluation, 1 day left: 1 user enabled, no seat limit",
        id="evaluation-last-day",
    ),
    pytest.param(
        _evaluation_expired,
        {
            "seats_total": 0,
            "seats_used": 0,
            "evaluation": False,
            "evaluation_days_left": 0,
            "evaluation_ends_at": at(30),
            "evaluation_expired": True,
            "unlimited": False,
        },
        "0 of 0 seats in use (the evaluation has ended)",
        id="evaluation-expired",
    ),
    pytest.param(
        _licensed,
        {
            "seats_total": 35,
            "seats_used": 3,
            "users_enabled": 3,
            "over_capacity": (),
            "evaluation": False,
            "evaluation_days_left": 0,
            "evaluation_ends_at": None,
            "evaluation_expired": False,
            "unlimited": False,
            "support_until": date(2027, 11, 1),
            "counting": (Counted("L-25", 25, "purchased"), Counted("L-10", 10, "purchased")),
            "not_counting": (),
        },
        "3 of 35 seats in use; support until 2027-11-01",
        id="licensed",
    ),
    pytest.param(
        _full,
        {"seats_total": 25, "seats_used": 25, "users_enabled": 25, "over_capacity": ()},
        "25 of 25 seats in use; support until 2027-11-01",
        id="all-seats-used",
    ),
    pytest.param(
        _over_capacity,
        {
            "seats_total": 25,
            "seats_used": 25,
            "users_enabled": 30,
            "over_capacity": tuple(names(30)[25:]),
            "counting": (Counted("L-25", 25, "purchased"),),
        },
        "25 of 25 seats in use, 5 enabled users over capacity; support until 2027-11-01",
        id="over-capacity",
    ),
    pytest.param(
        _one_over,
        {"seats_total": 2, "seats_used": 2, "users_enabled": 3, "over_capacity": ("user03",)},
        "2 of 2 seats in use, 1 enabled user over capacity; support until 2027-11-01",
        id="one-over-capacity",
    ),
    pytest.param(
        _purchase_removed,
        {
            "seats_total": 0,
            "evaluation": False,
            "evaluation_expired": False,
            "evaluation_ends_at": None,
            "support_until": None,
        },
        "0 of 0 seats in use",
        id="license-bought-then-removed",
    ),
]


@pytest.mark.parametrize(("state", "numbers", "summary"), STATES)
def test_status_view(
    vendor: Vendor, state: object, numbers: dict[str, object], summary: str
) -> None:
    registry, now = state(vendor)  # type: ignore[operator]

    view = status_view(registry, now)

    assert {name: getattr(view, name) for name in numbers} == numbers
    assert view.summary == summary
    assert (view.server_version, view.major_version, view.installation_id) == ("6.0.0", 6, HERE)
    assert view.seats_used <= max(view.seats_total, view.users_enabled)
    assert sum(c.seats for c in view.counting) == view.seats_total


def test_status_follows_users_being_disabled(vendor: Vendor) -> None:
    registry, now = _over_capacity(vendor)
    registry = registry.apply(plan_disable(registry, ["user01", "user02"], now))

    view = status_view(registry, now)

    assert view.users_enabled == 28
    assert view.over_capacity == ("user28", "user29", "user30")
    assert view.summary.startswith("25 of 25 seats in use, 3 enabled users over capacity")


def _not_counting_registry(vendor: Vendor) -> Registry:
    licenses = [
        stored(vendor, vendor.key(25, license_id="L-6X")),
        stored(vendor, vendor.key(50, major=5, license_id="L-5X", purchased=date(2026, 10, 1))),
        stored(vendor, vendor.key(10, major=7, license_id="L-7X")),
        stored(
            vendor,
            vendor.key(
                0,
                kind=LicenseKind.EVALUATION_EXTENSION,
                installation_id=HERE,
                evaluation_until=date(2026, 12, 20),
                license_id="L-EXT",
            ),
        ),
        InstalledLicense("L-BROKEN", "OSLK1.x.y", START, None, "its signature does not match"),
        InstalledLicense("L-GONE", "OSLK1.x.y", START, None),
    ]
    return Registry.build(
        Installation(HERE, START - timedelta(days=500), evaluation_ended_at=START),
        licenses,
        [],
    )


def test_status_lists_licenses_that_do_not_count_with_reasons(vendor: Vendor) -> None:
    view = status_view(_not_counting_registry(vendor), at(1))

    assert view.counting == (Counted("L-6X", 25, "purchased"),)
    assert view.seats_total == 25
    assert view.not_counting == (
        NotCounted("L-5X", "5.x license: does not count on 6.x"),
        NotCounted("L-7X", "7.x license: does not count on 6.x"),
        NotCounted("L-EXT", "evaluation extension: carries no seats"),
        NotCounted("L-BROKEN", "its signature does not match"),
        NotCounted("L-GONE", "the key no longer verifies"),
    )
    # The 5.x license was bought later, but support comes from counting licenses only.
    assert view.support_until == date(2027, 11, 1)
    assert view.summary == "0 of 25 seats in use; support until 2027-11-01"


def test_status_of_an_installation_upgraded_from_5x(vendor: Vendor) -> None:
    five = stored(vendor, vendor.key(50, major=5, license_id="L-5X"))
    registry = Registry.build(
        Installation(HERE, datetime(2024, 1, 1, tzinfo=UTC), evaluation_ended_at=START),
        [five],
        [],
    )

    view = status_view(registry, at(1))

    assert view.seats_total == 0
    assert view.counting == ()
    assert view.not_counting == (NotCounted("L-5X", "5.x license: does not count on 6.x"),)
    assert view.support_until is None
    assert view.summary == "0 of 0 seats in use"


def test_status_during_an_extended_evaluation(vendor: Vendor) -> None:
    extension = vendor.key(
        0,
        kind=LicenseKind.EVALUATION_EXTENSION,
        installation_id=HERE,
        evaluation_until=date(2026, 12, 20),
        license_id="L-EXT",
    )
    registry = install(vendor, fresh(), extension, at(20))

    view = status_view(registry, at(35))

    assert view.evaluation is True
    assert view.evaluation_ends_at == datetime(2026, 12, 21, tzinfo=UTC)
    assert view.evaluation_days_left == 14
    assert view.not_counting == (NotCounted("L-EXT", "evaluation extension: carries no seats"),)
    assert view.summary == "evaluation, 14 days left: 0 users enabled, no seat limit"


def test_support_at_the_latest_purchase_date_a_key_may_carry(vendor: Vendor) -> None:
    # Such a key is refused at install (dated in the future); one stored already counts.
    key = vendor.key(5, purchased=date(9000, 12, 31))
    registry = Registry.build(Installation(HERE, START, START), [stored(vendor, key)], [])

    view = status_view(registry, at(2))

    assert view.seats_total == 5
    assert view.support_until == date(9001, 12, 31)
