"""The published upgrade policy: who upgrades to a new major release free, who at a
discount, who pays the full fee, and the rule that says why.

Every table states the published rule it checks. Fees, percentages and the window come
from the policy under test, and some tables use a 40% / 2-month policy, so nothing here
holds unless the module reads them from the policy. Money is in cents.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from officestatus_server.core.keys import LicenseKind
from officestatus_server.core.model import InstalledLicense
from officestatus_server.core.registry import not_counting_reason
from officestatus_server.core.upgrade import (
    Fees,
    Holding,
    Outcome,
    Policy,
    Quote,
    TargetRelease,
    decide,
    full_fee,
    merge_duplicates,
    months_before,
    new_license_price,
    policy_from_mapping,
    quote,
)
from officestatus_server.core.versions import Version
from officestatus_server.errors import InvalidInput
from tests.support import START, Vendor

D = Decimal

# The published defaults: 50% upgrade fee, three-month window. Fees for 6 and 7.
POLICY = Policy(fees={6: Fees(D(150), D(4000)), 7: Fees(D(200), D(5000))})
# Configured otherwise: 40% upgrade fee, two-month window.
POLICY_40_2 = replace(POLICY, upgrade_percent=D(40), free_window_months=2)

# The announcement example: announced 1 April, released 15 April.
ANNOUNCED = TargetRelease(7, released=date(2027, 4, 15), announced=date(2027, 4, 1))
RELEASED = TargetRelease(7, released=date(2027, 4, 15))
# An announcement after the release is ignored: the window counts from the release.
ANNOUNCED_LATE = TargetRelease(7, released=date(2027, 4, 15), announced=date(2027, 5, 1))
ANNOUNCED_SAME_DAY = TargetRelease(7, released=date(2027, 4, 15), announced=date(2027, 4, 15))
# Month ends: three months before 31 May is the last day of February.
RELEASED_MAY_31 = TargetRelease(7, released=date(2027, 5, 31))
RELEASED_MAY_31_LEAP = TargetRelease(7, released=date(2028, 5, 31))
ANNOUNCED_MAY_31 = TargetRelease(7, released=date(2027, 6, 20), announced=date(2027, 5, 31))

OLD = date(2020, 6, 1)  # long before any window


def holding(**overrides: Any) -> Holding:
    """A verified one-seat 6.x license bought long ago, with `overrides`."""
    values: dict[str, Any] = {
        "license_id": "L-1",
        "major": 6,
        "seats": 1,
        "kind": LicenseKind.PURCHASED,
        "customer": "Acme Ltd",
        "purchase_date": OLD,
    }
    values.update(overrides)
    return Holding(**values)


def in_cents(value: Decimal) -> bool:
    """Whether an amount is a Decimal quantized to cents."""
    return isinstance(value, Decimal) and value.as_tuple().exponent == -2


# --- a license covers its major: minor updates are free, a new major is not ---------

COVERS = [
    pytest.param("1.2.0", "1.0.0", True, id="1.2.0-covers-1.0.0"),
    pytest.param("1.2.0", "1.2.0", True, id="1.2.0-covers-itself"),
    pytest.param("1.2.0", "1.2.1", True, id="1.2.0-covers-1.2.1-patch"),
    pytest.param("1.2.0", "1.9.9", True, id="1.2.0-covers-1.9.9"),
    pytest.param("1.2.0", "2.0.0", False, id="1.2.0-not-2.0.0"),
    pytest.param("1.2.0", "0.9", False, id="1.2.0-not-0.9"),
    pytest.param("6.0", "6.4.2", True, id="6.0-covers-6.4.2"),
    pytest.param("6.9.9", "7.0.0", False, id="6.9.9-not-7.0.0"),
]


@pytest.mark.parametrize(("license_version", "release", "covered"), COVERS)
def test_a_license_counts_on_every_release_of_its_major(
    vendor: Vendor, license_version: str, release: str, covered: bool
) -> None:
    key = vendor.key(5, major=Version.parse(license_version).major)
    installed = InstalledLicense(key.license_id, "", START, key)
    counts = not_counting_reason(installed, Version.parse(release).major) is None
    assert counts is covered


# --- months_before(): calendar months, month ends clamped ----------------------------

MONTHS_BEFORE = [
    pytest.param(date(2027, 4, 1), 3, date(2027, 1, 1), id="1-apr-minus-3"),
    pytest.param(date(2027, 4, 15), 3, date(2027, 1, 15), id="15-apr-minus-3"),
    pytest.param(date(2027, 1, 15), 3, date(2026, 10, 15), id="across-year-end"),
    pytest.param(date(2027, 5, 31), 3, date(2027, 2, 28), id="31-may-to-28-feb"),
    pytest.param(date(2028, 5, 31), 3, date(2028, 2, 29), id="31-may-to-29-feb-leap"),
    pytest.param(date(2027, 5, 30), 3, date(2027, 2, 28), id="30-may-to-28-feb"),
    pytest.param(date(2027, 3, 31), 1, date(2027, 2, 28), id="31-mar-minus-1"),
    pytest.param(date(2027, 7, 31), 2, date(2027, 5, 31), id="31-jul-minus-2"),
    pytest.param(date(2027, 12, 31), 3, date(2027, 9, 30), id="31-dec-to-30-sep"),
    pytest.param(date(2027, 12, 31), 12, date(2026, 12, 31), id="twelve-months"),
    pytest.param(date(2027, 3, 15), 15, date(2025, 12, 15), id="fifteen-months"),
    pytest.param(date(2027, 4, 15), 0, date(2027, 4, 15), id="zero-months"),
]


@pytest.mark.parametrize(("day", "months", "expected"), MONTHS_BEFORE)
def test_months_before(day: date, months: int, expected: date) -> None:
    assert months_before(day, months) == expected


# --- TargetRelease.reference: the announcement counts only if it came first ----------

REFERENCE = [
    pytest.param(ANNOUNCED, date(2027, 4, 1), id="announced-first"),
    pytest.param(RELEASED, date(2027, 4, 15), id="no-announcement"),
    pytest.param(ANNOUNCED_LATE, date(2027, 4, 15), id="announced-after-release-ignored"),
    pytest.param(ANNOUNCED_SAME_DAY, date(2027, 4, 15), id="announced-on-release-day"),
]


@pytest.mark.parametrize(("target", "reference"), REFERENCE)
def test_reference_date(target: TargetRelease, reference: date) -> None:
    assert target.reference == reference


# --- the free window -----------------------------------------------------------------
# "A license purchased within three months before a new major release is upgraded free.
# If the release was announced before it shipped, the three months count back from the
# announcement." A day more than that: the discounted upgrade.

WINDOW = [
    # The announcement example exactly.
    pytest.param(
        ANNOUNCED, date(2027, 1, 1), POLICY, Outcome.FREE, "0",
        ("2027-01-01", "on or after 2027-01-01", "within 3 months", "announcement on 2027-04-01"),
        id="announced-example-1-jan-free",
    ),
    pytest.param(
        ANNOUNCED, date(2026, 12, 31), POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license", "of the full fee 200.00"),
        id="announced-example-31-dec-discounted",
    ),
    pytest.param(
        ANNOUNCED, date(2027, 4, 10), POLICY, Outcome.FREE, "0",
        ("announcement on 2027-04-01",),
        id="announced-bought-between-announcement-and-release-free",
    ),
    # No announcement: the window counts back from the release.
    pytest.param(
        RELEASED, date(2027, 1, 15), POLICY, Outcome.FREE, "0",
        ("on or after 2027-01-15", "release on 2027-04-15"),
        id="no-announcement-exactly-3-months-free",
    ),
    pytest.param(
        RELEASED, date(2027, 1, 14), POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="no-announcement-one-day-more-discounted",
    ),
    # An announcement after the release changes nothing.
    pytest.param(
        ANNOUNCED_LATE, date(2027, 1, 15), POLICY, Outcome.FREE, "0",
        ("on or after 2027-01-15", "release on 2027-04-15"),
        id="late-announcement-ignored-exactly-3-months-free",
    ),
    pytest.param(
        ANNOUNCED_LATE, date(2027, 1, 14), POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="late-announcement-ignored-one-day-more-discounted",
    ),
    pytest.param(
        ANNOUNCED_SAME_DAY, date(2027, 1, 15), POLICY, Outcome.FREE, "0",
        ("release on 2027-04-15",),
        id="announced-on-release-day-counts-from-release",
    ),
    # Month ends.
    pytest.param(
        RELEASED_MAY_31, date(2027, 2, 28), POLICY, Outcome.FREE, "0",
        ("on or after 2027-02-28",),
        id="31-may-release-28-feb-free",
    ),
    pytest.param(
        RELEASED_MAY_31, date(2027, 2, 27), POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="31-may-release-27-feb-discounted",
    ),
    pytest.param(
        RELEASED_MAY_31_LEAP, date(2028, 2, 29), POLICY, Outcome.FREE, "0",
        ("on or after 2028-02-29",),
        id="31-may-release-leap-29-feb-free",
    ),
    pytest.param(
        RELEASED_MAY_31_LEAP, date(2028, 2, 28), POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="31-may-release-leap-28-feb-discounted",
    ),
    pytest.param(
        ANNOUNCED_MAY_31, date(2027, 2, 28), POLICY, Outcome.FREE, "0",
        ("announcement on 2027-05-31",),
        id="31-may-announcement-28-feb-free",
    ),
    pytest.param(
        ANNOUNCED_MAY_31, date(2027, 2, 27), POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="31-may-announcement-27-feb-discounted",
    ),
    # Bought after the release: free.
    pytest.param(
        RELEASED, date(2027, 4, 15), POLICY, Outcome.FREE, "0", ("2027-04-15",),
        id="bought-on-release-day-free",
    ),
    pytest.param(
        RELEASED, date(2027, 4, 16), POLICY, Outcome.FREE, "0", ("2027-04-16",),
        id="bought-day-after-release-free",
    ),
    pytest.param(
        ANNOUNCED, date(2028, 1, 1), POLICY, Outcome.FREE, "0", ("2028-01-01",),
        id="bought-months-after-release-free",
    ),
    # Configured: a two-month window and a 40% upgrade fee.
    pytest.param(
        RELEASED, date(2027, 2, 15), POLICY_40_2, Outcome.FREE, "0",
        ("on or after 2027-02-15", "within 2 months"),
        id="configured-2-months-exactly-free",
    ),
    pytest.param(
        RELEASED, date(2027, 2, 14), POLICY_40_2, Outcome.DISCOUNTED, "80.00",
        ("a valid 6.x license", "of the full fee 200.00"),
        id="configured-2-months-one-day-more-40-percent",
    ),
    pytest.param(
        RELEASED, date(2027, 1, 15), POLICY_40_2, Outcome.DISCOUNTED, "80.00",
        ("a valid 6.x license",),
        id="configured-2-months-3-months-before-not-free",
    ),
    pytest.param(
        ANNOUNCED, date(2027, 2, 1), POLICY_40_2, Outcome.FREE, "0",
        ("on or after 2027-02-01", "announcement on 2027-04-01"),
        id="configured-2-months-from-announcement-free",
    ),
    pytest.param(
        RELEASED, date(2027, 4, 15), replace(POLICY, free_window_months=0), Outcome.FREE, "0",
        ("within 0 months",),
        id="configured-no-window-release-day-free",
    ),
    pytest.param(
        RELEASED, date(2027, 4, 14), replace(POLICY, free_window_months=0), Outcome.DISCOUNTED,
        "100.00", ("a valid 6.x license",),
        id="configured-no-window-day-before-discounted",
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("target", "purchased", "policy", "outcome", "price", "rule_parts"), WINDOW
)
def test_free_window(
    target: TargetRelease,
    purchased: date,
    policy: Policy,
    outcome: Outcome,
    price: str,
    rule_parts: tuple[str, ...],
) -> None:
    line = decide(holding(purchase_date=purchased), target, policy)
    assert line.outcome is outcome
    assert line.price == D(price)
    for part in rule_parts:
        assert part in line.rule


# --- every other rule ----------------------------------------------------------------

PROTECTED_ID = replace(POLICY, protection={"L-1": date(2027, 4, 15)})
PROTECTED_CUSTOMER = replace(POLICY, protection={"Acme Ltd": date(2027, 4, 15)})
PROTECTION_ENDED_ID = replace(POLICY, protection={"L-1": date(2027, 4, 14)})
PROTECTION_ENDED_CUSTOMER = replace(POLICY, protection={"Acme Ltd": date(2027, 4, 14)})
PROTECTED_OTHER = replace(POLICY, protection={"L-2": date(2030, 1, 1), "Other": date(2030, 1, 1)})
SITE = LicenseKind.SITE

RULES = [
    # "Holders of a valid license to any earlier release may upgrade it for 50% of the
    # current full license fee" (the fee of the release upgraded to).
    pytest.param(
        {}, RELEASED, POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license", "of the full fee 200.00"),
        id="earlier-release-half-the-7.x-fee",
    ),
    pytest.param(
        {"major": 3}, RELEASED, POLICY, Outcome.DISCOUNTED, "100.00",
        ("a valid 3.x license",),
        id="much-earlier-release-same-discount",
    ),
    pytest.param(
        {"seats": 3}, RELEASED, POLICY, Outcome.DISCOUNTED, "300.00",
        ("of the full fee 600.00",),
        id="three-seats-half-of-three-seat-fees",
    ),
    pytest.param(
        {"seats": 3}, RELEASED, POLICY_40_2, Outcome.DISCOUNTED, "240.00",
        ("of the full fee 600.00",),
        id="configured-40-percent",
    ),
    pytest.param(
        {}, TargetRelease(6, date(2025, 1, 1)), POLICY, Outcome.NOT_NEEDED, "0",
        ("a 6.x license already covers OfficeStatus 6",),
        id="6.x-license-covers-6-not-needed",
    ),
    # "A site license is upgraded whole": 50% of the site fee, whatever its seats.
    pytest.param(
        {"kind": SITE, "seats": 1}, RELEASED, POLICY, Outcome.DISCOUNTED, "2500.00",
        ("of the full fee 5000.00", "a site license, upgraded whole"),
        id="site-1-seat-half-the-site-fee",
    ),
    pytest.param(
        {"kind": SITE, "seats": 250}, RELEASED, POLICY, Outcome.DISCOUNTED, "2500.00",
        ("of the full fee 5000.00", "a site license, upgraded whole"),
        id="site-250-seats-half-the-site-fee",
    ),
    pytest.param(
        {"kind": SITE, "seats": 100_000}, RELEASED, POLICY, Outcome.DISCOUNTED, "2500.00",
        ("a site license, upgraded whole",),
        id="site-100000-seats-half-the-site-fee",
    ),
    pytest.param(
        {"kind": SITE, "seats": 250}, RELEASED, POLICY_40_2, Outcome.DISCOUNTED, "2000.00",
        ("a site license, upgraded whole",),
        id="site-configured-40-percent",
    ),
    pytest.param(
        {"kind": SITE, "seats": 250, "purchase_date": date(2027, 3, 1)}, RELEASED, POLICY,
        Outcome.FREE, "0", ("within 3 months",),
        id="site-in-window-free-whole",
    ),
    # "A license received free (press copy, special offer, free upgrade) is not eligible
    # for a free or discounted upgrade": the full fee, even in the window or protected.
    pytest.param(
        {"kind": LicenseKind.FREE_PRESS}, RELEASED, POLICY, Outcome.FULL_PRICE, "200.00",
        ("received free (free-press)", "full fee"),
        id="free-press-full-fee",
    ),
    pytest.param(
        {"kind": LicenseKind.FREE_OFFER}, RELEASED, POLICY, Outcome.FULL_PRICE, "200.00",
        ("received free (free-offer)", "full fee"),
        id="free-offer-full-fee",
    ),
    pytest.param(
        {"kind": LicenseKind.FREE_UPGRADE}, RELEASED, POLICY, Outcome.FULL_PRICE, "200.00",
        ("received free (free-upgrade)", "full fee"),
        id="free-upgrade-full-fee",
    ),
    pytest.param(
        {"kind": LicenseKind.FREE_OFFER, "seats": 4}, RELEASED, POLICY, Outcome.FULL_PRICE,
        "800.00", ("received free (free-offer)",),
        id="free-offer-4-seats-full-fee-of-4",
    ),
    pytest.param(
        {"kind": LicenseKind.FREE_PRESS, "purchase_date": date(2027, 3, 1)}, RELEASED, POLICY,
        Outcome.FULL_PRICE, "200.00", ("received free (free-press)",),
        id="free-press-in-window-still-full-fee",
    ),
    pytest.param(
        {"kind": LicenseKind.FREE_UPGRADE, "purchase_date": date(2027, 5, 1)}, RELEASED,
        POLICY, Outcome.FULL_PRICE, "200.00", ("received free (free-upgrade)",),
        id="free-upgrade-after-release-still-full-fee",
    ),
    pytest.param(
        {"kind": LicenseKind.FREE_PRESS}, RELEASED, PROTECTED_CUSTOMER, Outcome.FULL_PRICE,
        "200.00", ("received free (free-press)",),
        id="free-press-protected-still-full-fee",
    ),
    # "A customer whose upgrade-protection agreement covers the release date upgrades
    # free": by license id or by customer name, up to the release date itself.
    pytest.param(
        {}, RELEASED, PROTECTED_ID, Outcome.FREE, "0",
        ("upgrade protection until 2027-04-15 covers the release on 2027-04-15",),
        id="protection-by-license-id-ends-on-release-day-free",
    ),
    pytest.param(
        {}, RELEASED, PROTECTED_CUSTOMER, Outcome.FREE, "0",
        ("upgrade protection until 2027-04-15 covers the release on 2027-04-15",),
        id="protection-by-customer-ends-on-release-day-free",
    ),
    pytest.param(
        {}, RELEASED, PROTECTION_ENDED_ID, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="protection-by-license-id-ended-day-before-discounted",
    ),
    pytest.param(
        {}, RELEASED, PROTECTION_ENDED_CUSTOMER, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="protection-by-customer-ended-day-before-discounted",
    ),
    pytest.param(
        {}, ANNOUNCED, replace(POLICY, protection={"L-1": date(2027, 4, 10)}),
        Outcome.DISCOUNTED, "100.00", ("a valid 6.x license",),
        id="protection-covering-announcement-not-release-discounted",
    ),
    pytest.param(
        {}, RELEASED, PROTECTED_OTHER, Outcome.DISCOUNTED, "100.00",
        ("a valid 6.x license",),
        id="protection-of-another-license-and-customer-discounted",
    ),
    pytest.param(
        {"kind": SITE, "seats": 250}, RELEASED, PROTECTED_CUSTOMER, Outcome.FREE, "0",
        ("upgrade protection",),
        id="protected-site-license-free",
    ),
    # An unverified key, or no license at all: not eligible.
    pytest.param(
        {"verified": False, "problem": "the signature does not match"}, RELEASED, POLICY,
        Outcome.NOT_ELIGIBLE, "0", ("not valid: the signature does not match",),
        id="unverified-key-not-eligible",
    ),
    pytest.param(
        {"verified": False, "problem": "forged", "purchase_date": date(2027, 3, 1)},
        RELEASED, PROTECTED_CUSTOMER, Outcome.NOT_ELIGIBLE, "0", ("not valid: forged",),
        id="unverified-key-in-window-and-protected-not-eligible",
    ),
    pytest.param(
        {"verified": False, "problem": "forged", "major": 7}, RELEASED, POLICY,
        Outcome.NOT_ELIGIBLE, "0", ("not valid: forged",),
        id="unverified-key-for-target-major-not-eligible",
    ),
    pytest.param(
        {"kind": LicenseKind.EVALUATION_EXTENSION, "seats": 0}, RELEASED, POLICY,
        Outcome.NOT_ELIGIBLE, "0", ("an evaluation extension is no license",),
        id="evaluation-extension-not-eligible",
    ),
    pytest.param(
        {"kind": LicenseKind.EVALUATION_EXTENSION, "seats": 0, "purchase_date": date(2027, 3, 1)},
        RELEASED, PROTECTED_CUSTOMER, Outcome.NOT_ELIGIBLE, "0",
        ("an evaluation extension is no license",),
        id="evaluation-extension-in-window-and-protected-not-eligible",
    ),
    # A license of the target major or newer needs no upgrade (minor updates are free).
    pytest.param(
        {"major": 7}, RELEASED, POLICY, Outcome.NOT_NEEDED, "0",
        ("a 7.x license already covers OfficeStatus 7",),
        id="same-major-not-needed",
    ),
    pytest.param(
        {"major": 8}, RELEASED, POLICY, Outcome.NOT_NEEDED, "0",
        ("a 8.x license is newer than OfficeStatus 7",),
        id="newer-major-not-needed",
    ),
    pytest.param(
        {"major": 7, "kind": SITE, "seats": 500}, RELEASED, POLICY, Outcome.NOT_NEEDED, "0",
        ("already covers OfficeStatus 7",),
        id="same-major-site-not-needed",
    ),
    pytest.param(
        {"major": 7, "kind": LicenseKind.FREE_PRESS}, RELEASED, POLICY, Outcome.NOT_NEEDED,
        "0", ("already covers OfficeStatus 7",),
        id="same-major-free-press-not-needed",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "target", "policy", "outcome", "price", "rule_parts"), RULES)
def test_decide(
    overrides: dict[str, Any],
    target: TargetRelease,
    policy: Policy,
    outcome: Outcome,
    price: str,
    rule_parts: tuple[str, ...],
) -> None:
    subject = holding(**overrides)
    line = decide(subject, target, policy)
    assert line.holding == subject
    assert line.outcome is outcome
    assert line.price == D(price)
    for part in rule_parts:
        assert part in line.rule


def test_customer_protection_applies_despite_an_expired_license_agreement() -> None:
    policy = replace(POLICY, protection={"L-1": date(2026, 1, 1), "Acme Ltd": date(2028, 1, 1)})
    line = decide(holding(), RELEASED, policy)
    assert line.outcome is Outcome.FREE
    assert line.price == 0


def test_license_protection_applies_despite_an_expired_customer_agreement() -> None:
    policy = replace(POLICY, protection={"L-1": date(2028, 1, 1), "Acme Ltd": date(2026, 1, 1)})
    line = decide(holding(), RELEASED, policy)
    assert line.outcome is Outcome.FREE
    assert line.price == 0


UPGRADES = [
    pytest.param(Outcome.FREE, True, id="free"),
    pytest.param(Outcome.DISCOUNTED, True, id="discounted"),
    pytest.param(Outcome.FULL_PRICE, False, id="full-price-is-a-new-license"),
    pytest.param(Outcome.NOT_NEEDED, False, id="not-needed"),
    pytest.param(Outcome.NOT_ELIGIBLE, False, id="not-eligible"),
]


@pytest.mark.parametrize(("outcome", "upgrades"), UPGRADES)
def test_outcome_upgrades(outcome: Outcome, upgrades: bool) -> None:
    assert outcome.upgrades is upgrades


FULL_FEES = [
    pytest.param({"seats": 1}, "200", id="one-seat"),
    pytest.param({"seats": 7}, "1400", id="seven-seats"),
    pytest.param({"kind": SITE, "seats": 1}, "5000", id="site-1-seat"),
    pytest.param({"kind": SITE, "seats": 9999}, "5000", id="site-9999-seats"),
    pytest.param({"kind": LicenseKind.FREE_OFFER, "seats": 2}, "400", id="free-offer-2-seats"),
]


@pytest.mark.parametrize(("overrides", "fee"), FULL_FEES)
def test_full_fee(overrides: dict[str, Any], fee: str) -> None:
    assert full_fee(holding(**overrides), POLICY.fees[7]) == D(fee)


def test_decide_without_fees_for_the_target_major() -> None:
    with pytest.raises(InvalidInput) as caught:
        decide(holding(), TargetRelease(9, date(2030, 1, 1)), POLICY)
    assert caught.value.reason == "POLICY_NO_FEES"
    assert "[fees.9]" in caught.value.message


# --- the rule text names the configured percentage -----------------------------------

PERCENT_TEXT = [
    pytest.param(D("12.5"), "12.5", id="12.5"),
    pytest.param(D("12.50"), "12.5", id="12.50"),
    pytest.param(D(35), "35", id="35"),
    pytest.param(D(50), "50", id="50-published-default"),
    pytest.param(D("50.0"), "50", id="50.0"),
    pytest.param(D(40), "40", id="40"),
    pytest.param(D(100), "100", id="100"),
]


@pytest.mark.parametrize(("percent", "text"), PERCENT_TEXT)
def test_discount_rule_names_the_percentage(percent: Decimal, text: str) -> None:
    line = decide(holding(), RELEASED, replace(POLICY, upgrade_percent=percent))
    assert line.outcome is Outcome.DISCOUNTED
    assert f": {text}% of the full fee 200.00" in line.rule


# --- duplicates: the original purchase date counts, once -----------------------------

ORIGINAL = holding(purchase_date=date(2026, 6, 1))  # before the window
REISSUED = holding(purchase_date=date(2027, 3, 1))  # same license id, inside the window
FORGED_EARLIER = holding(purchase_date=date(2027, 2, 1), verified=False, problem="forged")
OTHER = holding(license_id="L-2", purchase_date=date(2027, 3, 1))

MERGES = [
    pytest.param([ORIGINAL, REISSUED], [ORIGINAL], id="original-first"),
    pytest.param([REISSUED, ORIGINAL], [ORIGINAL], id="reissued-first"),
    pytest.param([REISSUED, REISSUED], [REISSUED], id="same-key-twice"),
    pytest.param([REISSUED, FORGED_EARLIER], [REISSUED], id="unverified-duplicate-ignored"),
    pytest.param([FORGED_EARLIER], [FORGED_EARLIER], id="only-unverified-kept"),
    pytest.param([ORIGINAL, OTHER], [ORIGINAL, OTHER], id="different-ids-kept"),
    pytest.param([REISSUED, OTHER, ORIGINAL], [ORIGINAL, OTHER], id="mixed"),
    pytest.param([], [], id="none"),
]


@pytest.mark.parametrize(("holdings", "expected"), MERGES)
def test_merge_duplicates(holdings: list[Holding], expected: list[Holding]) -> None:
    assert merge_duplicates(holdings) == expected


DUPLICATE_QUOTES = [
    pytest.param([ORIGINAL, REISSUED], Outcome.DISCOUNTED, "100.00", id="original-first"),
    pytest.param([REISSUED, ORIGINAL], Outcome.DISCOUNTED, "100.00", id="reissued-first"),
    pytest.param([REISSUED, REISSUED], Outcome.FREE, "0", id="duplicate-in-window-once"),
    pytest.param([ORIGINAL, ORIGINAL], Outcome.DISCOUNTED, "100.00", id="duplicate-paid-once"),
    pytest.param([FORGED_EARLIER], Outcome.NOT_ELIGIBLE, "0", id="only-unverified"),
]


@pytest.mark.parametrize(("holdings", "outcome", "total"), DUPLICATE_QUOTES)
def test_duplicates_count_once_with_the_original_date(
    holdings: list[Holding], outcome: Outcome, total: str
) -> None:
    """A re-issued key cannot move a purchase into the free window."""
    result = quote(holdings, RELEASED, POLICY)
    assert len(result.lines) == 1
    assert result.lines[0].outcome is outcome
    assert result.total == D(total)


# --- quotes --------------------------------------------------------------------------


def test_quote_lines_and_total() -> None:
    holdings = [
        holding(license_id="A"),  # discounted: 100.00
        holding(license_id="B", kind=SITE, seats=300),  # site whole: 2500.00
        holding(license_id="C", purchase_date=date(2027, 2, 1)),  # in the window: free
        holding(license_id="D", kind=LicenseKind.FREE_PRESS, seats=2),  # full fee: 400.00
        holding(license_id="E", verified=False, problem="forged"),  # not eligible
        holding(license_id="F", major=7),  # not needed
        holding(license_id="A", purchase_date=date(2027, 3, 1)),  # re-issued A: once
    ]
    result = quote(holdings, RELEASED, replace(POLICY, currency="CHF"))
    assert isinstance(result, Quote)
    assert result.target == RELEASED
    assert result.currency == "CHF"
    assert [(line.holding.license_id, line.outcome) for line in result.lines] == [
        ("A", Outcome.DISCOUNTED),
        ("B", Outcome.DISCOUNTED),
        ("C", Outcome.FREE),
        ("D", Outcome.FULL_PRICE),
        ("E", Outcome.NOT_ELIGIBLE),
        ("F", Outcome.NOT_NEEDED),
    ]
    assert [line.price for line in result.lines] == [D(100), D(2500), 0, D(400), 0, 0]
    assert result.total == D("3000.00")
    assert in_cents(result.total)


QUOTE_TOTALS = [
    pytest.param(POLICY, "3000.00", id="published-50-percent"),
    pytest.param(POLICY_40_2, "2400.00", id="configured-40-percent"),
]


@pytest.mark.parametrize(("policy", "total"), QUOTE_TOTALS)
def test_quote_total_follows_the_policy(policy: Policy, total: str) -> None:
    holdings = [
        holding(license_id="A", seats=5),  # full 1000.00
        holding(license_id="B", kind=SITE, seats=40),  # full 5000.00
    ]
    assert quote(holdings, RELEASED, policy).total == D(total)


def test_empty_quote_costs_nothing() -> None:
    result = quote([], RELEASED, POLICY)
    assert result.lines == ()
    assert result.total == 0
    assert in_cents(result.total)


def test_all_free_quote_total_is_in_cents() -> None:
    result = quote([holding(purchase_date=date(2027, 3, 1))], RELEASED, POLICY)
    assert result.total == 0
    assert in_cents(result.total)


# --- money in cents ------------------------------------------------------------------

CENTS_POLICY = replace(POLICY, fees={7: Fees(D("33.33"), D("999.99"))}, upgrade_percent=D("12.5"))

CHARGED = [
    pytest.param({}, Outcome.DISCOUNTED, "4.17", id="discounted-rounded-to-cents"),
    pytest.param({"seats": 3}, Outcome.DISCOUNTED, "12.50", id="discounted-3-seats"),
    pytest.param({"kind": SITE, "seats": 9}, Outcome.DISCOUNTED, "125.00", id="site"),
    pytest.param({"kind": LicenseKind.FREE_OFFER}, Outcome.FULL_PRICE, "33.33", id="full"),
]


@pytest.mark.parametrize(("overrides", "outcome", "price"), CHARGED)
def test_charged_prices_are_in_cents(
    overrides: dict[str, Any], outcome: Outcome, price: str
) -> None:
    line = decide(holding(**overrides), RELEASED, CENTS_POLICY)
    assert line.outcome is outcome
    assert str(line.price) == price
    assert in_cents(line.price)


ZERO_PRICED = [
    pytest.param({"purchase_date": date(2027, 3, 1)}, Outcome.FREE, id="free"),
    pytest.param({"major": 7}, Outcome.NOT_NEEDED, id="not-needed"),
    pytest.param({"verified": False, "problem": "forged"}, Outcome.NOT_ELIGIBLE, id="not-eligible"),
    pytest.param(
        {"kind": LicenseKind.EVALUATION_EXTENSION, "seats": 0}, Outcome.NOT_ELIGIBLE,
        id="evaluation-extension",
    ),
    pytest.param(
        {"customer": "Acme Ltd"}, Outcome.FREE, id="protected",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "outcome"), ZERO_PRICED)
def test_zero_prices_are_in_cents(overrides: dict[str, Any], outcome: Outcome) -> None:
    policy = replace(CENTS_POLICY, protection={"Acme Ltd": date(2030, 1, 1)})
    line = decide(holding(**{"customer": "Other", **overrides}), RELEASED, policy)
    assert line.outcome is outcome
    assert in_cents(line.price)


# --- new licenses: segment and cross-grade discounts ---------------------------------

DISCOUNTS = replace(
    POLICY,
    segment_percent={"nonprofit": D(35), "education": D(45), "government": D(15)},
    crossgrade_percent=D(25),
)

NEW_LICENSES = [
    pytest.param({}, "400.00", "full fee", id="no-discount"),
    pytest.param({"site": True}, "5000.00", "full fee", id="site-no-discount"),
    pytest.param(
        {"segment": "nonprofit"}, "260.00", "nonprofit discount: 35% off 400.00", id="nonprofit"
    ),
    pytest.param(
        {"segment": "education"}, "220.00", "education discount: 45% off 400.00", id="education"
    ),
    pytest.param(
        {"segment": "government"}, "340.00", "government discount: 15% off 400.00",
        id="government",
    ),
    pytest.param(
        {"crossgrade": True}, "300.00", "cross-grade discount: 25% off 400.00", id="crossgrade"
    ),
    pytest.param(
        {"segment": "education", "crossgrade": True}, "220.00",
        "education discount: 45% off 400.00", id="education-and-crossgrade-larger-only",
    ),
    pytest.param(
        {"segment": "government", "crossgrade": True}, "300.00",
        "cross-grade discount: 25% off 400.00", id="government-and-crossgrade-larger-only",
    ),
    pytest.param(
        {"segment": "nonprofit", "site": True}, "3250.00",
        "nonprofit discount: 35% off 5000.00", id="nonprofit-site",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("options", "price", "rule"), NEW_LICENSES)
def test_new_license_price(options: dict[str, Any], price: str, rule: str) -> None:
    amount, why = new_license_price(2, 7, DISCOUNTS, **options)
    assert amount == D(price)
    assert in_cents(amount)
    assert why == rule


def test_new_license_price_is_in_cents() -> None:
    policy = replace(CENTS_POLICY, segment_percent={"education": D("12.5")})
    amount, _ = new_license_price(3, 7, policy, segment="education")
    assert str(amount) == "87.49"  # 99.99 less 12.5%: 87.49125


def test_new_license_reason_names_a_round_percentage() -> None:
    policy = replace(POLICY, segment_percent={"nonprofit": D(20)})
    assert new_license_price(2, 7, policy, segment="nonprofit")[1] == (
        "nonprofit discount: 20% off 400.00"
    )


NEW_LICENSE_REFUSED = [
    pytest.param({"segment": "charity"}, DISCOUNTS, 7, "POLICY_NO_SEGMENT", id="unknown-segment"),
    pytest.param(
        {"segment": "education"}, POLICY, 7, "POLICY_NO_SEGMENT", id="segment-not-configured"
    ),
    pytest.param(
        {"segment": "charity", "crossgrade": True}, DISCOUNTS, 7, "POLICY_NO_SEGMENT",
        id="unknown-segment-with-crossgrade",
    ),
    pytest.param({}, DISCOUNTS, 9, "POLICY_NO_FEES", id="no-fees-for-major"),
]  # fmt: skip


@pytest.mark.parametrize(("options", "policy", "major", "reason"), NEW_LICENSE_REFUSED)
def test_new_license_price_refused(
    options: dict[str, Any], policy: Policy, major: int, reason: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        new_license_price(2, major, policy, **options)
    assert caught.value.reason == reason


# --- the policy file -----------------------------------------------------------------

FULL_TOML = """
currency = "USD"
upgrade_percent = 40
free_window_months = 2

[fees.6]
seat = 80
site = 4000

[fees.7]
seat = 99.90
site = "5000.00"

[discounts]
nonprofit = 35
education = 45.5
government = 15
crossgrade = 25

[upgrade_protection]
"Acme Ltd" = 2027-06-30
L-42 = "2027-04-14"
"""


def test_policy_from_a_full_file() -> None:
    policy = policy_from_mapping(tomllib.loads(FULL_TOML))
    assert policy == Policy(
        fees={6: Fees(D(80), D(4000)), 7: Fees(D("99.9"), D("5000.00"))},
        currency="USD",
        upgrade_percent=D(40),
        free_window_months=2,
        segment_percent={"nonprofit": D(35), "education": D("45.5"), "government": D(15)},
        crossgrade_percent=D(25),
        protection={"Acme Ltd": date(2027, 6, 30), "L-42": date(2027, 4, 14)},
    )


def test_policy_defaults_are_the_published_ones() -> None:
    policy = policy_from_mapping(tomllib.loads("[fees.7]\nseat = 200\nsite = 5000\n"))
    assert policy == Policy(fees={7: Fees(D(200), D(5000))})
    assert (policy.currency, policy.upgrade_percent, policy.free_window_months) == (
        "EUR",
        D(50),
        3,
    )
    assert (policy.segment_percent, policy.crossgrade_percent, policy.protection) == (
        {},
        D(0),
        {},
    )


FROM_FILE = [
    pytest.param(
        holding(customer="Other", purchase_date=date(2027, 2, 15)), Outcome.FREE, "0",
        id="2-month-window-edge",
    ),
    pytest.param(
        holding(customer="Other", purchase_date=date(2027, 2, 14)), Outcome.DISCOUNTED,
        "39.96", id="one-day-more-40-percent-of-99.90",
    ),
    pytest.param(
        holding(customer="Other", kind=SITE, seats=50), Outcome.DISCOUNTED, "2000.00",
        id="site-40-percent",
    ),
    pytest.param(holding(customer="Acme Ltd"), Outcome.FREE, "0", id="protected-customer"),
    pytest.param(
        holding(license_id="L-42", customer="Other"), Outcome.DISCOUNTED, "39.96",
        id="license-protection-ended-day-before",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("subject", "outcome", "price"), FROM_FILE)
def test_decide_with_a_policy_from_a_file(subject: Holding, outcome: Outcome, price: str) -> None:
    policy = policy_from_mapping(tomllib.loads(FULL_TOML))
    line = decide(subject, RELEASED, policy)
    assert line.outcome is outcome
    assert line.price == D(price)


def test_new_license_price_with_a_policy_from_a_file() -> None:
    policy = policy_from_mapping(tomllib.loads(FULL_TOML))
    assert new_license_price(10, 7, policy, segment="education")[0] == D("544.46")
    assert new_license_price(10, 7, policy, crossgrade=True)[0] == D("749.25")


FEES_7 = "[fees.7]\nseat = 200\nsite = 5000\n"

INVALID_POLICIES = [
    pytest.param("currency = 'EUR'\n", id="no-fees"),
    pytest.param("fees = 5\n", id="fees-not-a-table"),
    pytest.param("[fees.seven]\nseat = 200\nsite = 5000\n", id="major-not-a-number"),
    pytest.param("[fees.7]\nseat = 200\n", id="no-site-fee"),
    pytest.param("[fees.7]\nsite = 5000\n", id="no-seat-fee"),
    pytest.param("[fees.7]\nseat = 'cheap'\nsite = 5000\n", id="seat-fee-not-a-number"),
    pytest.param("upgrade_percent = 150\n" + FEES_7, id="upgrade-percent-over-100"),
    pytest.param("upgrade_percent = -1\n" + FEES_7, id="upgrade-percent-negative"),
    pytest.param("upgrade_percent = 'fifty'\n" + FEES_7, id="upgrade-percent-not-a-number"),
    pytest.param("upgrade_percent = inf\n" + FEES_7, id="upgrade-percent-infinite"),
    pytest.param(FEES_7 + "[discounts]\neducation = 101\n", id="segment-percent-over-100"),
    pytest.param(FEES_7 + "[discounts]\ncrossgrade = -5\n", id="crossgrade-negative"),
    pytest.param(FEES_7 + "[discounts]\nnonprofit = 'lots'\n", id="segment-not-a-number"),
    pytest.param("free_window_months = -1\n" + FEES_7, id="negative-window"),
    pytest.param("free_window_months = 30000\n" + FEES_7, id="window-beyond-the-calendar"),
    pytest.param("free_window_months = 'three'\n" + FEES_7, id="window-not-a-number"),
    pytest.param(FEES_7 + "[upgrade_protection]\nAcme = 'soon'\n", id="protection-not-a-date"),
    pytest.param(
        "upgrade_percent = nan\n" + FEES_7, id="upgrade-percent-nan",
    ),
    pytest.param(
        "free_window_months = 2.5\n" + FEES_7, id="window-fractional",
    ),
    pytest.param(
        "free_window_months = true\n" + FEES_7, id="window-boolean",
    ),
    pytest.param(
        "[fees.7]\nseat = -200\nsite = 5000\n", id="negative-fee",
    ),
]  # fmt: skip


@pytest.mark.parametrize("text", INVALID_POLICIES)
def test_invalid_policy_refused(text: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        policy_from_mapping(tomllib.loads(text))
    assert caught.value.reason == "POLICY_INVALID"


NO_FEES = [
    pytest.param(5, id="older-major"),
    pytest.param(8, id="newer-major"),
]


@pytest.mark.parametrize("major", NO_FEES)
def test_policy_without_fees_for_a_major(major: int) -> None:
    policy = policy_from_mapping(tomllib.loads(FULL_TOML))
    with pytest.raises(InvalidInput) as caught:
        policy.fees_for(major)
    assert caught.value.reason == "POLICY_NO_FEES"
    assert f"[fees.{major}]" in caught.value.message
