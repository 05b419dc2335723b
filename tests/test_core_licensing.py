"""The licensing rules: seats, evaluation, extensions, removal, over capacity, names, login.

Every registry here is built from core values and changed only through the plan_*
functions and `Registry.apply`, with `now` passed in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from officestatus.wire import DenyReason
from officestatus_server.core.evaluation import EVALUATION_DAYS
from officestatus_server.core.keys import LicenseKey, LicenseKind
from officestatus_server.core.login import DecisionCache, decide_login
from officestatus_server.core.model import Installation, InstalledLicense
from officestatus_server.core.names import name_key
from officestatus_server.core.plans import (
    plan_add_users,
    plan_disable,
    plan_enable,
    plan_install,
    plan_remove,
)
from officestatus_server.core.registry import Registry, not_counting_reason, year_after
from officestatus_server.errors import (
    AlreadyExists,
    InvalidInput,
    KeyRejected,
    LicenseServerError,
    NotFound,
    PreconditionFailed,
    SeatsExhausted,
)
from tests.core_support import (
    HERE,
    add,
    at,
    day_date,
    disable,
    enable,
    fresh,
    install,
    license_ids,
    licensed,
    names,
    remove,
    stored,
    text_of,
)
from tests.support import START, Vendor

OTHER = "inst-0002"


# --- seats ---------------------------------------------------------------------------------

SEAT_SUMS = [
    pytest.param([(25, LicenseKind.PURCHASED)], 25, id="25"),
    pytest.param([(25, LicenseKind.PURCHASED), (10, LicenseKind.PURCHASED)], 35, id="25+10"),
    pytest.param([(1, LicenseKind.PURCHASED)] * 3, 3, id="1+1+1"),
    pytest.param([(500, LicenseKind.SITE), (25, LicenseKind.PURCHASED)], 525, id="site+25"),
    pytest.param(
        [(5, LicenseKind.FREE_PRESS), (5, LicenseKind.FREE_OFFER), (5, LicenseKind.FREE_UPGRADE)],
        15,
        id="free-kinds-count",
    ),
]


@pytest.mark.parametrize(("licenses", "seats"), SEAT_SUMS)
def test_seats_are_the_sum_of_installed_licenses(
    vendor: Vendor, licenses: list[tuple[int, LicenseKind]], seats: int
) -> None:
    registry = fresh()
    for count, kind in licenses:
        registry = install(vendor, registry, vendor.key(count, kind=kind), at(1))

    assert registry.seats == seats
    assert len(registry.counting_licenses) == len(licenses)


def _ext(vendor: Vendor, **kw: Any) -> LicenseKey:
    return vendor.key(
        0,
        kind=LicenseKind.EVALUATION_EXTENSION,
        installation_id=HERE,
        evaluation_until=day_date(40),
        **kw,
    )


def _counting_rows(vendor: Vendor, row: str) -> list[InstalledLicense]:
    six = stored(vendor, vendor.key(25, license_id="L-6X"))
    rows = {
        "upgraded-from-5": [stored(vendor, vendor.key(50, major=5, license_id="L-5X"))],
        "5x-beside-6x": [six, stored(vendor, vendor.key(50, major=5, license_id="L-5X"))],
        "7x-present": [six, stored(vendor, vendor.key(10, major=7, license_id="L-7X"))],
        "extension": [six, stored(vendor, _ext(vendor, license_id="L-EXT"))],
        "key-no-longer-verifies": [
            six,
            InstalledLicense("L-BAD", "OSLK1.x.y", START, None, "the signature does not match"),
        ],
        "key-none-without-problem": [six, InstalledLicense("L-BAD", "junk", START, None)],
    }
    return rows[row]


NOT_COUNTING = [
    pytest.param(
        "upgraded-from-5", 0, {"L-5X": "5.x license: does not count on 6.x"}, id="upgraded-from-5"
    ),
    pytest.param(
        "5x-beside-6x", 25, {"L-5X": "5.x license: does not count on 6.x"}, id="5x-beside-6x"
    ),
    pytest.param("7x-present", 25, {"L-7X": "7.x license: does not count on 6.x"}, id="7x"),
    pytest.param(
        "extension", 25, {"L-EXT": "evaluation extension: carries no seats"}, id="extension"
    ),
    pytest.param(
        "key-no-longer-verifies",
        25,
        {"L-BAD": "the signature does not match"},
        id="key-no-longer-verifies",
    ),
    pytest.param(
        "key-none-without-problem",
        25,
        {"L-BAD": "the key no longer verifies"},
        id="key-none-without-problem",
    ),
]


@pytest.mark.parametrize(("row", "seats", "reasons"), NOT_COUNTING)
def test_only_verified_seat_licenses_for_6x_count(
    vendor: Vendor, row: str, seats: int, reasons: dict[str, str]
) -> None:
    registry = Registry.build(Installation(HERE, START), _counting_rows(vendor, row), [])

    assert registry.seats == seats
    found = {
        lic.license_id: reason
        for lic in registry.licenses
        if (reason := not_counting_reason(lic, registry.major)) is not None
    }
    assert found == reasons


def test_upgraded_5x_license_gives_no_seats_to_enable(vendor: Vendor) -> None:
    five = stored(vendor, vendor.key(50, major=5))
    registry = Registry.build(
        Installation(HERE, START - timedelta(days=400), evaluation_ended_at=START),
        [five],
        [],
    )

    assert registry.seats == 0
    assert registry.support_until is None
    with pytest.raises(SeatsExhausted):
        plan_add_users(registry, ["alice"], True, at(1))


OTHER_MAJOR = [
    pytest.param(5, "LICENSE_OLDER_MAJOR", ["OfficeStatus 5", "OfficeStatus 6", "upgrade"], id="5"),
    pytest.param(1, "LICENSE_OLDER_MAJOR", ["OfficeStatus 1", "upgrade"], id="1"),
    pytest.param(7, "LICENSE_NEWER_MAJOR", ["OfficeStatus 7", "upgrade this server"], id="7"),
    pytest.param(99, "LICENSE_NEWER_MAJOR", ["OfficeStatus 99"], id="99"),
]


@pytest.mark.parametrize(("major", "reason", "says"), OTHER_MAJOR)
def test_install_refuses_a_license_for_another_major(
    vendor: Vendor, major: int, reason: str, says: list[str]
) -> None:
    registry = licensed(vendor, 25)
    key = vendor.key(50, major=major)

    with pytest.raises(PreconditionFailed) as caught:
        plan_install(registry, key, text_of(vendor, key), at(2))

    assert caught.value.reason == reason
    for words in says:
        assert words in caught.value.message
    assert registry.seats == 25


def test_other_major_refused_during_evaluation_keeps_the_evaluation(vendor: Vendor) -> None:
    registry = fresh()
    key = vendor.key(50, major=5)
    with pytest.raises(PreconditionFailed):
        plan_install(registry, key, text_of(vendor, key), at(2))
    assert registry.evaluation(at(2)).active


@pytest.mark.parametrize("second_seats", [25, 10], ids=["same-key-again", "same-id-other-seats"])
def test_the_same_license_counts_once(vendor: Vendor, second_seats: int) -> None:
    first = vendor.key(25, license_id="L-ONCE")
    registry = install(vendor, fresh(), first, at(1))
    again = vendor.key(second_seats, license_id="L-ONCE")

    with pytest.raises(AlreadyExists) as caught:
        plan_install(registry, again, text_of(vendor, again), at(3))

    assert caught.value.reason == "LICENSE_ALREADY_INSTALLED"
    assert "L-ONCE" in caught.value.message
    assert "since 2026-11-03" in caught.value.message
    assert registry.seats == 25
    assert license_ids(registry) == ["L-ONCE"]


def test_install_audit_says_what_was_installed(vendor: Vendor) -> None:
    registry = fresh()
    first = plan_install(registry, vendor.key(25), "t1", at(1))
    registry = registry.apply(first)
    second = plan_install(registry, vendor.key(10, kind=LicenseKind.SITE), "t2", at(2))

    assert first.audit is not None
    assert second.audit is not None
    assert (
        first.audit.result == "installed: 25 seats (purchased); 25 seats in all; evaluation ended"
    )
    assert second.audit.result == "installed: 10 seats (site); 35 seats in all"
    assert (first.audit.action, first.audit.at) == ("license.install", at(1))
    assert first.evaluation_ended_at == at(1)
    assert second.evaluation_ended_at is None


# --- enabling within the seats ----------------------------------------------------------------


def _enable_by_adding(registry: Registry, name: str, now: datetime) -> Registry:
    return add(registry, [name], now, enable=True)


def _enable_existing(registry: Registry, name: str, now: datetime) -> Registry:
    registry = add(registry, [name], now, enable=False)
    return enable(registry, [name], now)


ENABLE_WAYS = [
    pytest.param(_enable_by_adding, id="add-enabled"),
    pytest.param(_enable_existing, id="add-then-enable"),
]


@pytest.mark.parametrize("enable_one", ENABLE_WAYS)
def test_enable_up_to_the_seats_then_refuse(
    vendor: Vendor, enable_one: Callable[[Registry, str, datetime], Registry]
) -> None:
    registry = licensed(vendor, 25, 10)
    for name in names(35):
        registry = enable_one(registry, name, at(2))
    assert registry.seats_used(at(2)) == 35

    with pytest.raises(SeatsExhausted) as caught:
        enable_one(registry, "user36", at(2))

    assert caught.value.reason == "SEATS_EXHAUSTED"
    assert caught.value.message == "35 of 35 seats in use: install a license or disable a user."
    assert registry.enabled_count() == 35


def test_disable_one_then_enable_another(vendor: Vendor) -> None:
    registry = add(licensed(vendor, 25, 10), names(35), at(2))
    registry = add(registry, ["newcomer"], at(2), enable=False)

    registry = disable(registry, ["user07"], at(3))
    registry = enable(registry, ["newcomer"], at(3))

    assert registry.enabled_count() == 35
    assert registry.enabled_order[-1] == name_key("newcomer")
    assert not registry.users[name_key("user07")].enabled
    assert decide_login(registry, "newcomer", at(3)).granted
    assert decide_login(registry, "user07", at(3)).reason is DenyReason.USER_DISABLED


def _bulk_start(vendor: Vendor) -> Registry:
    registry = add(licensed(vendor, 25, 10), names(30), at(2))
    return add(registry, names(10, "spare"), at(2), enable=False)


BULK = [
    pytest.param("enable", names(5, "spare"), None, 35, id="enable-5-of-5-free"),
    pytest.param(
        "enable", [*names(5, "spare"), "user01", "USER02"], None, 35, id="already-enabled-free"
    ),
    pytest.param(
        "enable",
        names(6, "spare"),
        (
            SeatsExhausted,
            "SEATS_EXHAUSTED",
            "Enabling 6 users needs 6 free seats, but 30 of 35 seats are in use (5 free): "
            "install a license or disable users.",
        ),
        30,
        id="enable-6-of-5-free",
    ),
    pytest.param(
        "enable",
        [*names(4, "spare"), "ghost"],
        (NotFound, "USER_NOT_FOUND", "No such user: ghost. Add them first."),
        30,
        id="one-unknown",
    ),
    pytest.param(
        "enable",
        [*names(2, "spare"), "  "],
        (InvalidInput, "USER_NAME_EMPTY", "A user name cannot be empty."),
        30,
        id="one-empty-name",
    ),
    pytest.param(
        "enable",
        ["spare01", "SPARE01"],
        (InvalidInput, "USER_NAME_DUPLICATE", None),
        30,
        id="named-twice",
    ),
    pytest.param(
        "enable",
        [],
        (InvalidInput, "USER_NAMES_EMPTY", "Name at least one user."),
        30,
        id="empty-list",
    ),
    pytest.param("add", names(5, "new"), None, 35, id="add-5-enabled"),
    pytest.param(
        "add",
        names(6, "new"),
        (SeatsExhausted, "SEATS_EXHAUSTED", None),
        30,
        id="add-6-enabled",
    ),
    pytest.param(
        "add",
        [*names(3, "new"), "User05"],
        (AlreadyExists, "USER_EXISTS", None),
        30,
        id="add-one-existing",
    ),
]


@pytest.mark.parametrize(("action", "request_names", "refusal", "enabled_after"), BULK)
def test_bulk_changes_are_all_or_none(
    vendor: Vendor,
    action: str,
    request_names: list[str],
    refusal: tuple[type[LicenseServerError], str, str | None] | None,
    enabled_after: int,
) -> None:
    registry = _bulk_start(vendor)

    def run() -> Registry:
        if action == "enable":
            return enable(registry, request_names, at(3))
        return add(registry, request_names, at(3))

    if refusal is None:
        after = run()
    else:
        error, reason, message = refusal
        with pytest.raises(error) as caught:
            run()
        assert caught.value.reason == reason
        if message is not None:
            assert caught.value.message == message
        after = registry
    assert after.enabled_count() == enabled_after
    assert after.enabled_count() <= after.seats


def test_enable_audit_reports_the_seats(vendor: Vendor) -> None:
    registry = _bulk_start(vendor)
    change = plan_enable(registry, ["spare01", "user01"], at(3))

    assert change.audit is not None
    assert change.audit.action == "users.enable"
    assert change.audit.subject == "spare01, user01"
    assert change.audit.result == "enabled 1 user (1 already enabled); 31 of 35 seats in use"
    assert change.touched == ("spare01", "user01")


def test_disabling_unknown_users_changes_nothing(vendor: Vendor) -> None:
    registry = _bulk_start(vendor)
    with pytest.raises(NotFound) as caught:
        plan_disable(registry, ["user01", "nobody"], at(3))
    assert caught.value.reason == "USER_NOT_FOUND"
    assert registry.users[name_key("user01")].enabled


def test_disabling_twice_is_harmless(vendor: Vendor) -> None:
    registry = disable(_bulk_start(vendor), ["user01"], at(3))
    change = plan_disable(registry, ["USER01"], at(4))
    assert change.put_users == ()
    assert change.audit is not None
    assert change.audit.result.startswith("disabled 0 users (1 already disabled)")
    assert change.audit.result.endswith("; 29 of 35 seats in use")


# --- evaluation ------------------------------------------------------------------------------

EVALUATION_MOMENTS = [
    pytest.param(at(0), True, 30, DenyReason.UNSPECIFIED, id="first-start"),
    pytest.param(at(0, hours=1), True, 30, DenyReason.UNSPECIFIED, id="one-hour-in"),
    pytest.param(at(28), True, 2, DenyReason.UNSPECIFIED, id="day-28"),
    pytest.param(at(29), True, 1, DenyReason.UNSPECIFIED, id="day-29"),
    pytest.param(at(29, hours=23), True, 1, DenyReason.UNSPECIFIED, id="day-29-23h"),
    pytest.param(at(30, microseconds=-1), True, 1, DenyReason.UNSPECIFIED, id="last-microsecond"),
    pytest.param(
        at(EVALUATION_DAYS), False, 0, DenyReason.EVALUATION_EXPIRED, id="exactly-30-days"
    ),
    pytest.param(at(31), False, 0, DenyReason.EVALUATION_EXPIRED, id="day-31"),
    pytest.param(at(400), False, 0, DenyReason.EVALUATION_EXPIRED, id="a-year-later"),
]


@pytest.mark.parametrize(("now", "active", "days_left", "login"), EVALUATION_MOMENTS)
def test_evaluation_runs_30_days(
    now: datetime, active: bool, days_left: int, login: DenyReason
) -> None:
    registry = add(fresh(), ["alice"], at(0))

    evaluation = registry.evaluation(now)
    decision = decide_login(registry, "alice", now)

    assert (evaluation.active, evaluation.days_left, evaluation.expired) == (
        active,
        days_left,
        not active,
    )
    assert evaluation.ends_at == at(30)
    assert not evaluation.ended_by_purchase
    assert (decision.granted, decision.reason) == (login is DenyReason.UNSPECIFIED, login)
    if active:
        days = "1 day" if days_left == 1 else f"{days_left} days"
        assert f"being evaluated: {days} left." in decision.message
    else:
        assert "The OfficeStatus evaluation ended on 2026-12-02." in decision.message


def test_evaluation_has_no_seat_limit() -> None:
    registry = add(fresh(), names(400), at(3))
    registry = add(registry, names(100, "more"), at(4))

    assert registry.seats == 0
    assert registry.enabled_count() == 500
    assert registry.seats_used(at(4)) == 500
    assert registry.over_capacity(at(4)) == []
    assert all(decide_login(registry, n, at(29)).granted for n in ("user01", "user400", "more100"))


def test_after_an_expired_evaluation_no_one_can_be_enabled() -> None:
    registry = add(fresh(), names(3), at(3))
    registry = add(registry, ["late"], at(31), enable=False)

    with pytest.raises(SeatsExhausted) as caught:
        enable(registry, ["late"], at(31))

    assert caught.value.message.startswith("No seats: no license is installed")
    assert decide_login(registry, "user01", at(31)).reason is DenyReason.EVALUATION_EXPIRED


FIRST_SEAT_KINDS = [
    pytest.param(kind, id=kind.value)
    for kind in LicenseKind
    if kind is not LicenseKind.EVALUATION_EXTENSION
]


@pytest.mark.parametrize("kind", FIRST_SEAT_KINDS)
def test_first_seat_license_ends_the_evaluation_for_good(vendor: Vendor, kind: LicenseKind) -> None:
    registry = add(fresh(), ["alice"], at(2))
    key = vendor.key(5, kind=kind)
    registry = install(vendor, registry, key, at(5))

    assert registry.installation.evaluation_ended_at == at(5)
    evaluation = registry.evaluation(at(6))
    assert (evaluation.active, evaluation.expired, evaluation.ended_by_purchase) == (
        False,
        False,
        True,
    )
    assert decide_login(registry, "alice", at(6)).granted

    registry = remove(registry, key.license_id, at(6), force=True)

    for now in (at(6), at(20), at(60)):
        assert not registry.evaluation(now).active
        decision = decide_login(registry, "alice", now)
        assert (decision.granted, decision.reason) == (False, DenyReason.NOT_LICENSED)
        assert "OfficeStatus 6 has no license installed" in decision.message
    with pytest.raises(SeatsExhausted):
        add(registry, ["bob"], at(7))


def test_evaluation_ended_at_is_kept_when_more_licenses_come(vendor: Vendor) -> None:
    registry = licensed(vendor, 5)
    registry = install(vendor, registry, vendor.key(5), at(9))
    assert registry.installation.evaluation_ended_at == at(1)


# --- evaluation extensions --------------------------------------------------------------------

EXTENDED = [
    pytest.param(at(10), at(31), True, 10, id="installed-during-evaluation-login-day-31"),
    pytest.param(at(31), at(31), True, 10, id="installed-after-expiry-login-day-31"),
    pytest.param(at(10), at(40, hours=14, minutes=59), True, 1, id="last-minute-of-until-day"),
    pytest.param(at(10), at(40, hours=15), False, 0, id="midnight-after-until-day"),
    pytest.param(at(10), at(45), False, 0, id="day-45"),
]


@pytest.mark.parametrize(("installed_at", "now", "granted", "days_left"), EXTENDED)
def test_extension_moves_the_end(
    vendor: Vendor, installed_at: datetime, now: datetime, granted: bool, days_left: int
) -> None:
    # START is 09:00 UTC, so day 40 15:00 is midnight after the extension's last day.
    registry = add(fresh(), ["alice"], at(1))
    registry = install(vendor, registry, _ext(vendor), installed_at)

    decision = decide_login(registry, "alice", now)
    evaluation = registry.evaluation(now)

    assert evaluation.ends_at == datetime(2026, 12, 13, tzinfo=UTC)
    assert decision.granted is granted
    assert evaluation.days_left == days_left
    assert decision.reason is (DenyReason.UNSPECIFIED if granted else DenyReason.EVALUATION_EXPIRED)
    assert registry.seats == 0


def test_extension_audit_and_no_end_of_evaluation(vendor: Vendor) -> None:
    change = plan_install(fresh(), _ext(vendor), "text", at(10))
    assert change.audit is not None
    assert change.audit.result == "evaluation extended until 2026-12-12"
    assert change.evaluation_ended_at is None


def test_later_extension_wins(vendor: Vendor) -> None:
    registry = install(vendor, fresh(), _ext(vendor), at(10))
    later = vendor.key(
        0,
        kind=LicenseKind.EVALUATION_EXTENSION,
        installation_id=HERE,
        evaluation_until=day_date(60),
    )
    registry = install(vendor, registry, later, at(35))
    assert registry.evaluation(at(35)).ends_at == datetime(2027, 1, 2, tzinfo=UTC)


def _refused_extension(vendor: Vendor, case: str) -> tuple[Registry, LicenseKey]:
    def extension(until: date, installation: str = HERE, major: int = 6) -> LicenseKey:
        return vendor.key(
            0,
            major=major,
            kind=LicenseKind.EVALUATION_EXTENSION,
            installation_id=installation,
            evaluation_until=until,
        )

    match case:
        case "other-installation":
            return fresh(), extension(day_date(40), installation=OTHER)
        case "ends-before-evaluation":
            return fresh(), extension(day_date(20))
        case "ends-the-day-before-the-30th":
            return fresh(), extension(day_date(29))
        case "shorter-than-installed-extension":
            return install(vendor, fresh(), extension(day_date(50)), at(3)), extension(day_date(45))
        case "after-purchase":
            return licensed(vendor, 25), extension(day_date(40))
        case "after-purchase-and-removal":
            registry = licensed(vendor, 25)
            return remove(registry, registry.licenses[0].license_id, at(2)), extension(day_date(40))
        case "for-5x":
            return fresh(), extension(day_date(40), major=5)
    raise AssertionError(case)


def test_an_extension_that_already_ran_out_is_refused(vendor: Vendor) -> None:
    stale = vendor.key(
        0,
        kind=LicenseKind.EVALUATION_EXTENSION,
        installation_id=HERE,
        evaluation_until=day_date(35),
    )
    with pytest.raises(PreconditionFailed) as caught:
        plan_install(fresh(), stale, "text", at(45))
    assert caught.value.reason == "EXTENSION_EXPIRED"
    assert "has passed" in caught.value.message


def test_nobody_is_over_capacity_when_there_are_no_seats(vendor: Vendor) -> None:
    registry = add(fresh(), ["ann", "bo"], at(1))
    assert registry.over_capacity(at(40)) == []
    assert "over capacity" not in registry.seats_phrase(at(40))
    assert decide_login(registry, "bo", at(40)).reason is DenyReason.EVALUATION_EXPIRED


REFUSED_EXTENSIONS = [
    pytest.param("other-installation", "EXTENSION_OTHER_INSTALLATION", id="other-installation"),
    pytest.param("ends-before-evaluation", "EXTENSION_DOES_NOT_EXTEND", id="ends-before"),
    pytest.param("ends-the-day-before-the-30th", "EXTENSION_DOES_NOT_EXTEND", id="day-29"),
    pytest.param(
        "shorter-than-installed-extension", "EXTENSION_DOES_NOT_EXTEND", id="shorter-than-other"
    ),
    pytest.param("after-purchase", "EVALUATION_ALREADY_ENDED", id="after-purchase"),
    pytest.param(
        "after-purchase-and-removal", "EVALUATION_ALREADY_ENDED", id="after-purchase-removed"
    ),
    pytest.param("for-5x", "LICENSE_OLDER_MAJOR", id="5x-extension"),
]


@pytest.mark.parametrize(("case", "reason"), REFUSED_EXTENSIONS)
def test_extension_refusals(vendor: Vendor, case: str, reason: str) -> None:
    registry, key = _refused_extension(vendor, case)

    with pytest.raises(PreconditionFailed) as caught:
        plan_install(registry, key, text_of(vendor, key), at(5))

    assert caught.value.reason == reason


def test_extension_for_another_installation_names_both(vendor: Vendor) -> None:
    registry, key = _refused_extension(vendor, "other-installation")
    with pytest.raises(PreconditionFailed) as caught:
        plan_install(registry, key, "text", at(5))
    assert OTHER in caught.value.message
    assert f"an extension for {HERE}." in caught.value.message


def test_extension_for_another_installation_never_counts(vendor: Vendor) -> None:
    stray = stored(
        vendor,
        vendor.key(
            0,
            kind=LicenseKind.EVALUATION_EXTENSION,
            installation_id=OTHER,
            evaluation_until=day_date(90),
        ),
    )
    registry = Registry.build(Installation(HERE, START), [stray], [])
    assert registry.evaluation(at(31)).expired


# --- removing licenses and over capacity ------------------------------------------------------

REMOVALS = [
    pytest.param(20, False, None, id="20-enabled-fits"),
    pytest.param(25, False, None, id="25-enabled-fits-exactly"),
    pytest.param(26, False, 1, id="26-enabled-refused"),
    pytest.param(30, False, 5, id="30-enabled-refused"),
    pytest.param(26, True, None, id="26-enabled-forced"),
    pytest.param(35, True, None, id="35-enabled-forced"),
]


@pytest.mark.parametrize(("enabled", "force", "refused_over"), REMOVALS)
def test_removal_that_leaves_too_few_seats_needs_force(
    vendor: Vendor, enabled: int, force: bool, refused_over: int | None
) -> None:
    registry = add(licensed(vendor, 25, 10), names(enabled), at(2))
    ten = registry.licenses[1].license_id

    if refused_over is not None:
        with pytest.raises(PreconditionFailed) as caught:
            plan_remove(registry, ten, force, at(3))
        assert caught.value.reason == "REMOVAL_EXCEEDS_SEATS"
        users = "1 user" if refused_over == 1 else f"{refused_over} users"
        assert (
            f"leaves 25 seats for {enabled} enabled users: disable {users} first"
            in caught.value.message
        )
        assert registry.seats == 35
        return

    change = plan_remove(registry, ten, force, at(3))
    after = registry.apply(change)
    over = max(enabled - 25, 0)
    assert after.seats == 25
    assert ten not in license_ids(after)
    forced = {0: "", 1: "; forced: 1 enabled user over capacity"}.get(
        over, f"; forced: {over} enabled users over capacity"
    )
    expected = "removed; 25 seats in all" + forced
    assert change.audit is not None
    assert change.audit.result == expected
    assert len(after.over_capacity(at(3))) == over


def test_removing_a_license_that_does_not_count_needs_no_force(vendor: Vendor) -> None:
    five = stored(vendor, vendor.key(50, major=5, license_id="L-5X"))
    six = stored(vendor, vendor.key(3, license_id="L-6X"))
    registry = Registry.build(Installation(HERE, START, START), [six, five], [])
    registry = add(registry, names(3), at(2))

    after = remove(registry, "L-5X", at(3))

    assert license_ids(after) == ["L-6X"]
    assert after.seats == 3


def test_removing_an_unknown_license_is_not_found(vendor: Vendor) -> None:
    with pytest.raises(NotFound) as caught:
        plan_remove(licensed(vendor, 25), "L-NOPE", False, at(2))
    assert caught.value.reason == "LICENSE_NOT_FOUND"


def test_forced_removal_leaves_the_first_enabled_holding_seats(vendor: Vendor) -> None:
    registry = licensed(vendor, 25, 10)
    for name in names(30):  # one by one: enable order is user01 .. user30
        registry = add(registry, [name], at(2))
    registry = remove(registry, registry.licenses[1].license_id, at(3), force=True)
    now = at(4)

    assert registry.over_capacity(now) == names(30)[25:]
    assert registry.seats_used(now) == 25
    for name in ("user01", "user25"):
        assert decide_login(registry, name, now).granted
    for name in ("user26", "user30"):
        decision = decide_login(registry, name, now)
        assert (decision.granted, decision.reason) == (False, DenyReason.OVER_CAPACITY)
        assert "All 25 OfficeStatus seats are held by users enabled before you" in (
            decision.message
        )

    # Enabling someone already enabled keeps their place and needs no seat.
    registry = enable(registry, ["user26"], now)
    assert registry.over_capacity(now)[0] == "user26"
    # A new user needs a free seat, and there is none.
    registry = add(registry, ["newcomer"], now, enable=False)
    with pytest.raises(SeatsExhausted) as caught:
        enable(registry, ["newcomer"], now)
    # Disabling one user frees no seat while others wait: the message counts what it takes.
    assert caught.value.message == (
        "30 users are enabled on 25 seats (5 over capacity): install a license, or disable "
        "6 users to enable 1 more."
    )
    # Disabling a seat holder gives the seat to the first user over capacity.
    registry = disable(registry, ["user03"], now)
    assert decide_login(registry, "user26", now).granted
    assert registry.over_capacity(now) == ["user27", "user28", "user29", "user30"]


def test_forced_removal_of_the_last_license_leaves_nobody_licensed(vendor: Vendor) -> None:
    registry = add(licensed(vendor, 3), names(3), at(2))
    only = registry.licenses[0].license_id
    with pytest.raises(PreconditionFailed):
        plan_remove(registry, only, False, at(3))

    registry = remove(registry, only, at(3), force=True)

    assert decide_login(registry, "user01", at(3)).reason is DenyReason.NOT_LICENSED


REENABLED = [
    pytest.param(None, ["carol"], id="nobody-reenabled"),
    pytest.param("alice", ["alice"], id="first-reenabled-goes-last"),
    pytest.param("bob", ["bob"], id="second-reenabled-goes-last"),
    pytest.param("carol", ["carol"], id="last-reenabled-stays-last"),
]


@pytest.mark.parametrize(("reenabled", "over"), REENABLED)
def test_reenabling_moves_a_user_to_the_back(
    vendor: Vendor, reenabled: str | None, over: list[str]
) -> None:
    registry = licensed(vendor, 2, 1)
    for name in ("alice", "bob", "carol"):
        registry = add(registry, [name], at(2))
    if reenabled is not None:
        registry = disable(registry, [reenabled], at(3))
        registry = enable(registry, [reenabled.upper()], at(3))

    registry = remove(registry, registry.licenses[1].license_id, at(4), force=True)

    assert registry.over_capacity(at(4)) == over
    assert decide_login(registry, over[0], at(4)).reason is DenyReason.OVER_CAPACITY
    assert [registry.users[k].name for k in registry.enabled_order][-1] == over[0]


# --- support ---------------------------------------------------------------------------------

SUPPORT_DATES = [
    pytest.param(date(2026, 11, 1), date(2027, 11, 1), id="ordinary"),
    pytest.param(date(2026, 12, 31), date(2027, 12, 31), id="new-years-eve"),
    pytest.param(date(2028, 2, 29), date(2029, 2, 28), id="29-february"),
    pytest.param(date(2027, 2, 28), date(2028, 2, 28), id="28-february-before-leap"),
    pytest.param(date(2027, 3, 1), date(2028, 3, 1), id="1-march"),
]


@pytest.mark.parametrize(("purchased", "until"), SUPPORT_DATES)
def test_support_runs_one_year_from_purchase(purchased: date, until: date) -> None:
    assert year_after(purchased) == until


REGISTRY_SUPPORT = [
    pytest.param([], None, id="no-license"),
    pytest.param([(6, date(2026, 11, 1))], date(2027, 11, 1), id="one"),
    pytest.param(
        [(6, date(2025, 3, 1)), (6, date(2026, 6, 15)), (6, date(2026, 1, 1))],
        date(2027, 6, 15),
        id="latest-purchase-wins",
    ),
    pytest.param([(6, date(2028, 2, 29))], date(2029, 2, 28), id="29-february"),
    pytest.param(
        [(6, date(2026, 1, 10)), (5, date(2026, 10, 1))], date(2027, 1, 10), id="5x-ignored"
    ),
    pytest.param([(5, date(2026, 10, 1))], None, id="only-5x"),
]


@pytest.mark.parametrize(("purchases", "until"), REGISTRY_SUPPORT)
def test_registry_support_until(
    vendor: Vendor, purchases: list[tuple[int, date]], until: date | None
) -> None:
    licenses = [stored(vendor, vendor.key(5, major=m, purchased=p)) for m, p in purchases]
    registry = Registry.build(Installation(HERE, START, START), licenses, [])
    assert registry.support_until == until


# --- user names --------------------------------------------------------------------------------

REFUSED_NAMES = [
    pytest.param([""], "USER_NAME_EMPTY", id="empty"),
    pytest.param(["   "], "USER_NAME_EMPTY", id="blank"),
    pytest.param(["x" * 257], "USER_NAME_TOO_LONG", id="257-chars"),
    pytest.param(["bad\x00name"], "USER_NAME_INVALID_CHARACTER", id="nul"),
    pytest.param(["tab\tname"], "USER_NAME_INVALID_CHARACTER", id="tab"),
    pytest.param(["bell\x07"], "USER_NAME_INVALID_CHARACTER", id="bell"),
    pytest.param(["Alice", "alice"], "USER_NAME_DUPLICATE", id="duplicate-case"),
    pytest.param(["Alice", "  ALICE "], "USER_NAME_DUPLICATE", id="duplicate-blanks"),
    pytest.param(["ok", "fine", ""], "USER_NAME_EMPTY", id="one-bad-among-good"),
    pytest.param([], "USER_NAMES_EMPTY", id="no-names"),
]


@pytest.mark.parametrize(("request_names", "reason"), REFUSED_NAMES)
def test_bad_names_are_refused_and_nothing_is_added(request_names: list[str], reason: str) -> None:
    registry = fresh()
    with pytest.raises(InvalidInput) as caught:
        plan_add_users(registry, request_names, True, at(1))
    assert caught.value.reason == reason
    assert registry.users == {}


def test_too_many_users_in_one_call_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        plan_add_users(fresh(), names(10_001, "u"), False, at(1))
    assert caught.value.reason == "TOO_MANY_USERS"


STORED_NAMES = [
    pytest.param("  Alice ", "Alice", "ALICE", id="trimmed"),
    pytest.param("CORP\\JDoe", "CORP\\JDoe", "corp\\jdoe", id="domain-case"),
    pytest.param("Élodie", "Élodie", "  élodie\t", id="accented"),
    pytest.param("x" * 256, "x" * 256, "X" * 256, id="256-chars"),
]


@pytest.mark.parametrize(("given", "kept", "login_as"), STORED_NAMES)
def test_names_are_trimmed_and_compared_regardless_of_case(
    given: str, kept: str, login_as: str
) -> None:
    registry = add(fresh(), [given], at(1))

    assert [u.name for u in registry.users.values()] == [kept]
    decision = decide_login(registry, login_as, at(2))
    assert (decision.granted, decision.user_name) == (True, kept)
    with pytest.raises(AlreadyExists) as caught:
        plan_add_users(registry, [login_as], False, at(2))
    assert caught.value.reason == "USER_EXISTS"


# --- login -------------------------------------------------------------------------------------


def _login_registry(vendor: Vendor, state: str) -> tuple[Registry, datetime]:
    registry = add(fresh(), ["alice"], at(1))
    registry = add(registry, ["dave"], at(1), enable=False)
    if state == "licensed":
        registry = install(vendor, registry, vendor.key(5), at(2))
        return registry, at(3)
    if state == "expired":
        return registry, at(31)
    return registry, at(3)


LOGINS = [
    pytest.param(
        "evaluation", "alice", DenyReason.UNSPECIFIED, "Welcome, alice.", id="eval-enabled"
    ),
    pytest.param(
        "licensed", "ALICE", DenyReason.UNSPECIFIED, "Welcome, alice.", id="licensed-enabled"
    ),
    pytest.param(
        "evaluation",
        "zed",
        DenyReason.USER_UNKNOWN,
        "does not know the user 'zed'",
        id="eval-unknown",
    ),
    pytest.param(
        "licensed", "zed", DenyReason.USER_UNKNOWN, "Ask your administrator to add", id="unknown"
    ),
    pytest.param("licensed", "", DenyReason.USER_UNKNOWN, "cannot be empty", id="empty-name"),
    pytest.param("licensed", "a\x00b", DenyReason.USER_UNKNOWN, "U+0000", id="control-char-name"),
    pytest.param(
        "evaluation", "dave", DenyReason.USER_DISABLED, "'dave' is disabled", id="eval-disabled"
    ),
    pytest.param(
        "licensed",
        "Dave",
        DenyReason.USER_DISABLED,
        "Ask your administrator to enable",
        id="disabled",
    ),
    pytest.param("expired", "dave", DenyReason.USER_DISABLED, "is disabled", id="expired-disabled"),
    pytest.param("expired", "zed", DenyReason.USER_UNKNOWN, "does not know", id="expired-unknown"),
    pytest.param(
        "expired", "alice", DenyReason.EVALUATION_EXPIRED, "evaluation ended", id="expired"
    ),
]


@pytest.mark.parametrize(("state", "login_as", "reason", "says"), LOGINS)
def test_login_decisions(
    vendor: Vendor, state: str, login_as: str, reason: DenyReason, says: str
) -> None:
    registry, now = _login_registry(vendor, state)

    decision = decide_login(registry, login_as, now)

    assert decision.reason is reason
    assert decision.granted is (reason is DenyReason.UNSPECIFIED)
    assert says in decision.message


# --- dates at the edge of the calendar ---------------------------------------------------------


@pytest.mark.parametrize(
    "until", [date.max, date(9001, 1, 1), date(1989, 12, 31)], ids=["max", "9001", "1989"]
)
def test_an_extension_beyond_the_calendar_is_refused_as_a_key(vendor: Vendor, until: date) -> None:
    with pytest.raises(KeyRejected) as refused:
        vendor.key(
            0, kind=LicenseKind.EVALUATION_EXTENSION, installation_id=HERE, evaluation_until=until
        )
    assert refused.value.reason == "KEY_MALFORMED"
    assert "dates must lie between" in refused.value.message


def test_a_kept_decision_is_given_again_only_while_the_registry_and_evaluation_hold(
    vendor: Vendor,
) -> None:
    """The login decision cache: a user who signs in again gets the same answer, and
    the first login after any change (a new registry) or a new evaluation state is
    decided anew."""
    cache = DecisionCache()
    registry = add(licensed(vendor, 25, 10), names(35), at(2))
    first, key = cache.decide(registry, "user07", at(2))
    assert first == decide_login(registry, "user07", at(2))
    assert first.granted
    assert key == name_key("user07")
    again, _ = cache.decide(registry, "user07", at(2, hours=1))
    assert again is first  # kept, not decided again
    registry = disable(registry, ["user07"], at(3))
    refused, key = cache.decide(registry, "user07", at(3))
    assert refused.reason is DenyReason.USER_DISABLED
    assert key == ""
    # A refusal is not kept: enabled again, the next login is granted.
    registry = enable(registry, ["user07"], at(3))
    assert cache.decide(registry, "user07", at(3))[0].granted


def test_the_decision_cache_starts_over_when_full_and_forgets_no_rule(vendor: Vendor) -> None:
    """At its limit the cache empties and fills again, and every answer stays the
    rules' answer."""
    cache = DecisionCache(limit=3)
    registry = add(licensed(vendor, 25), names(5), at(2))
    for name in names(5) * 2:
        decision, key = cache.decide(registry, name, at(2))
        assert decision == decide_login(registry, name, at(2))
        assert key == name_key(name)
        assert 1 <= len(cache) <= 3
    # One spelling kept per user, and never a name padded beyond a name's length: a
    # client cannot fill memory with the names of one user.
    other = DecisionCache()
    padded = "user02" + " " * 10_000
    assert other.decide(registry, padded, at(2))[0].granted
    assert len(other) == 0
    for name in ("user02", "USER02", "User02"):
        assert other.decide(registry, name, at(2))[0].granted
    assert len(other) == 1
    # During the evaluation the message counts the days left: a new day, a new answer.
    fresh_cache = DecisionCache()
    trial = add(fresh(), ["ann"], at(0))
    day0, _ = fresh_cache.decide(trial, "ann", at(0))
    day5, _ = fresh_cache.decide(trial, "ann", at(5))
    assert day0.message != day5.message
    assert day5 == decide_login(trial, "ann", at(5))


def test_a_heartbeat_decision_is_kept_by_user_key_until_a_change(vendor: Vendor) -> None:
    """A heartbeat's decision (the user's standing) is kept as a login's is, and a
    disable is heard at the next heartbeat."""
    cache = DecisionCache()
    registry = add(licensed(vendor, 25), names(5), at(2))
    key = name_key("user02")
    held = cache.standing(registry, key, registry.users[key], at(2))
    assert held.granted
    assert cache.standing(registry, key, registry.users[key], at(2, hours=2)) is held
    registry = disable(registry, ["user02"], at(3))
    refused = cache.standing(registry, key, registry.users[key], at(3))
    assert refused.reason is DenyReason.USER_DISABLED
