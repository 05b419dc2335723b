"""The published upgrade policy, as a pure decision table: who upgrades to a new major
release free, who at a discount, who pays the full fee, and why.

Rules, in the order they decide (the first that applies wins):

1. A key that does not verify, or is no license (an evaluation extension): not eligible.
2. A license for the target major or later: no upgrade needed. Minor updates are free:
   a 6.0 license covers every 6.x.y, never 7.x.
   A license upgraded already (another verified license of the request names it as the
   one it upgrades): no upgrade needed; its upgrade is priced on its own line, so the
   same seats are never upgraded, or charged, twice.
3. A license received free (press copy, special offer, free upgrade): no free or
   discounted upgrade; a new license costs the full fee.
4. An upgrade-protection agreement that covers the release date: free.
5. Purchased within the free window (three months) before the release, or before its
   announcement when it was announced first, or any time since: free.
6. Any other valid license to an earlier release: the upgrade percentage (50%) of the
   current full fee.

`RULES` holds this order (rules 4 to 6 as one row, priced by `decide`); the quote
(`decide`) and a server's preview before anyone buys (`preview_upgrade`) both follow it.

A site license is upgraded whole, all its seats at once. The purchase date that counts is
the original one: several keys for one license id (re-issued, duplicates) count as one
license with the earliest purchase date. Fees, percentages, the window and the agreements
come from the policy (a configuration file), never from here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from officestatus_server.core.keys import LicenseKey, LicenseKind
from officestatus_server.errors import InvalidInput

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
SEGMENTS = ("nonprofit", "education", "government")


@dataclass(frozen=True)
class Fees:
    """The full fees of new licenses for one major release."""

    seat: Decimal
    site: Decimal


@dataclass(frozen=True)
class Policy:
    """Everything the vendor may change without a new program."""

    fees: Mapping[int, Fees]
    currency: str = "EUR"
    upgrade_percent: Decimal = Decimal(50)
    free_window_months: int = 3
    # New licenses: percent off for these customer segments, and for cross-grades.
    segment_percent: Mapping[str, Decimal] = field(default_factory=dict)
    crossgrade_percent: Decimal = Decimal(0)
    # Upgrade-protection agreements: customer name or license id -> covered until.
    protection: Mapping[str, date] = field(default_factory=dict)

    def fees_for(self, major: int) -> Fees:
        """The fees of a major release, or a clear refusal when the policy has none."""
        try:
            return self.fees[major]
        except KeyError:
            raise InvalidInput(
                f"The policy has no fees for OfficeStatus {major}; add [fees.{major}] to it.",
                reason="POLICY_NO_FEES",
            ) from None


@dataclass(frozen=True)
class TargetRelease:
    """The major release being upgraded to, with its dates."""

    major: int
    released: date
    announced: date | None = None

    @property
    def reference(self) -> date:
        """The date the free window counts back from: the announcement, if it came first."""
        if self.announced is not None and self.announced < self.released:
            return self.announced
        return self.released


@dataclass(frozen=True)
class Holding:
    """A license as the vendor sees it in an upgrade request: verified, or why not."""

    license_id: str
    major: int
    seats: int
    kind: LicenseKind
    customer: str
    purchase_date: date
    verified: bool = True
    problem: str = ""
    # The license id this one is an upgrade of (signed in the key), if any.
    upgrades: str | None = None


class Outcome(StrEnum):
    """What the policy says for one license."""

    FREE = "free"
    DISCOUNTED = "discounted"
    FULL_PRICE = "full price"
    NOT_NEEDED = "not needed"
    NOT_ELIGIBLE = "not eligible"

    @property
    def upgrades(self) -> bool:
        """Whether the vendor issues an upgrade key for it."""
        return self in (Outcome.FREE, Outcome.DISCOUNTED)


class UpgradePath(StrEnum):
    """What a customer does with one license to run the target release."""

    UPGRADE = "upgrade"
    BUY_NEW = "buy new"
    NOT_NEEDED = "not needed"
    NOT_A_LICENSE = "not a license"


@dataclass(frozen=True)
class QuoteLine:
    """One license's price, and the rule that decided it."""

    holding: Holding
    outcome: Outcome
    price: Decimal
    rule: str


@dataclass(frozen=True)
class Quote:
    """The price list for moving a customer's licenses to a target release."""

    target: TargetRelease
    currency: str
    lines: tuple[QuoteLine, ...]

    @property
    def total(self) -> Decimal:
        """What the customer pays in all."""
        return sum((line.price for line in self.lines), ZERO)


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (the month's last day if shorter)."""
    month_index = day.year * 12 + day.month - 1 - months
    year, month = divmod(month_index, 12)
    month += 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("every month has 28 days")  # pragma: no cover


def full_fee(holding: Holding, fees: Fees) -> Decimal:
    """The full fee of a new license like this one: a site license whole."""
    if holding.kind is LicenseKind.SITE:
        return fees.site
    return fees.seat * holding.seats


def _percent(value: Decimal) -> str:
    """40 as "40", 12.50 as "12.5": never "4E+1"."""
    return format(value.normalize(), "f")


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


@dataclass(frozen=True)
class Facts:
    """What the rules read of a license: from a quote's holding or a server's installed key."""

    verified: bool
    # None when the key no longer verifies (the server cannot read it).
    kind: LicenseKind | None
    major: int
    target_major: int
    # The id of another verified license that names this one as the license it upgrades.
    upgraded_by: str | None = None


@dataclass(frozen=True)
class UpgradeRule:
    """One rule of the module's order, with what the quote and the preview make of it."""

    name: str
    holds: Callable[[Facts], bool]
    # The quote's outcome, or None: rules 4 to 6 price it (`decide`).
    outcome: Outcome | None
    # The quote charges the full fee.
    charges: bool
    # The preview: what to do with the license, and whether it counts under the target.
    path: UpgradePath
    counts_after: bool
    quote: Callable[[Holding, TargetRelease, Facts], str]
    preview: Callable[[Facts], str]


def _covered(holding: Holding, target: TargetRelease, facts: Facts) -> str:
    if holding.major == target.major:
        return f"a {holding.major}.x license already covers OfficeStatus {target.major}"
    return f"a {holding.major}.x license is newer than OfficeStatus {target.major}"


def _eligible(facts: Facts) -> str:
    whole = "; a site license is upgraded whole" if facts.kind is LicenseKind.SITE else ""
    return (
        f"a {facts.major}.x license: eligible for an upgrade (free if bought within "
        f"the free window before the release, otherwise at a discount){whole}"
    )


def _kind(facts: Facts) -> str:
    return facts.kind.value if facts.kind is not None else ""


# The module's rules 1 to 3, in order, and where rules 4 to 6 take over: the first that
# holds decides, for a quote (`decide`) and for a server's preview (`preview_upgrade`).
RULES: tuple[UpgradeRule, ...] = (
    UpgradeRule(
        "not valid",
        lambda f: not f.verified or f.kind is None,
        Outcome.NOT_ELIGIBLE,
        False,
        UpgradePath.NOT_A_LICENSE,
        False,
        lambda h, t, f: f"not valid: {h.problem}",
        lambda f: "the key no longer verifies",
    ),
    UpgradeRule(
        "no license",
        lambda f: f.kind is not None and not f.kind.carries_seats,
        Outcome.NOT_ELIGIBLE,
        False,
        UpgradePath.NOT_A_LICENSE,
        False,
        lambda h, t, f: "an evaluation extension is no license",
        lambda f: "an evaluation extension carries no seats",
    ),
    UpgradeRule(
        "for the target or later",
        lambda f: f.major >= f.target_major,
        Outcome.NOT_NEEDED,
        False,
        UpgradePath.NOT_NEEDED,
        True,
        _covered,
        lambda f: "already a license for that release",
    ),
    UpgradeRule(
        "upgraded already",
        lambda f: f.upgraded_by is not None,
        Outcome.NOT_NEEDED,
        False,
        UpgradePath.NOT_NEEDED,
        False,
        lambda h, t, f: f"upgraded already by {f.upgraded_by}, which is priced on its own line",
        lambda f: f"upgraded already by {f.upgraded_by}, which is seen on its own",
    ),
    UpgradeRule(
        "received free",
        lambda f: f.kind is not None and f.kind.is_free,
        Outcome.FULL_PRICE,
        True,
        UpgradePath.BUY_NEW,
        False,
        lambda h, t, f: (
            f"received free ({h.kind.value}): not eligible for a free or discounted "
            "upgrade; a new license at the full fee"
        ),
        lambda f: (
            f"received free ({_kind(f)}): not eligible for an upgrade; a new license is needed"
        ),
    ),
    UpgradeRule(
        "eligible: free or discounted by rules 4 to 6",
        lambda f: True,
        None,
        False,
        UpgradePath.UPGRADE,
        False,
        lambda h, t, f: "",
        _eligible,
    ),
)


def first_rule(facts: Facts) -> UpgradeRule:
    """The rule that decides for a license: the first in `RULES` that holds."""
    return next(rule for rule in RULES if rule.holds(facts))


def decide(
    holding: Holding, target: TargetRelease, policy: Policy, upgraded_by: Holding | None = None
) -> QuoteLine:
    """Apply the policy to one license (see the module's rules); `upgraded_by` is another
    verified license of the same request that is an upgrade of this one."""
    fees = policy.fees_for(target.major)
    full = _money(full_fee(holding, fees))
    later = upgraded_by.license_id if upgraded_by is not None else None
    facts = Facts(holding.verified, holding.kind, holding.major, target.major, later)
    rule = first_rule(facts)
    if rule.outcome is None:
        return _price(holding, target, policy, full)
    price = full if rule.charges else ZERO
    return QuoteLine(holding, rule.outcome, price, rule.quote(holding, target, facts))


def _price(holding: Holding, target: TargetRelease, policy: Policy, full: Decimal) -> QuoteLine:
    """Rules 4 to 6: an upgrade, free or at the upgrade percentage of the full fee."""
    # An agreement for the license or for the customer: either one that covers will do.
    agreements = [
        policy.protection.get(holding.license_id),
        policy.protection.get(holding.customer),
    ]
    covered_until = max((d for d in agreements if d is not None), default=None)
    if covered_until is not None and covered_until >= target.released:
        return QuoteLine(
            holding,
            Outcome.FREE,
            ZERO,
            f"upgrade protection until {covered_until.isoformat()} covers the release on "
            f"{target.released.isoformat()}",
        )
    window_start = months_before(target.reference, policy.free_window_months)
    if holding.purchase_date >= window_start:
        since = "announcement" if target.reference != target.released else "release"
        return QuoteLine(
            holding,
            Outcome.FREE,
            ZERO,
            f"purchased {holding.purchase_date.isoformat()}, on or after "
            f"{window_start.isoformat()}: within {policy.free_window_months} months before the "
            f"{since} on {target.reference.isoformat()}",
        )
    price = _money(full * policy.upgrade_percent / 100)
    whole = " (a site license, upgraded whole)" if holding.kind is LicenseKind.SITE else ""
    return QuoteLine(
        holding,
        Outcome.DISCOUNTED,
        price,
        f"a valid {holding.major}.x license: {_percent(policy.upgrade_percent)}% of the full "
        f"fee {full}{whole}",
    )


def merge_duplicates(holdings: Iterable[Holding]) -> list[Holding]:
    """One holding per license id: of re-issued or duplicate keys, the verified one with
    the original (earliest) purchase date counts, once."""
    groups: dict[str, list[Holding]] = {}
    for holding in holdings:
        groups.setdefault(holding.license_id, []).append(holding)
    merged = []
    for group in groups.values():
        verified = [h for h in group if h.verified]
        merged.append(min(verified, key=lambda h: h.purchase_date) if verified else group[0])
    return merged


def upgraded_by(holdings: Iterable[Holding]) -> dict[str, Holding]:
    """License id -> the verified holding that is an upgrade of it."""
    return {
        h.upgrades: h
        for h in holdings
        if h.verified and h.upgrades is not None and h.upgrades != h.license_id
    }


def quote(holdings: Iterable[Holding], target: TargetRelease, policy: Policy) -> Quote:
    """The price list for a customer's licenses."""
    merged = merge_duplicates(holdings)
    later = upgraded_by(merged)
    lines = tuple(decide(h, target, policy, later.get(h.license_id)) for h in merged)
    return Quote(target, policy.currency, lines)


def new_license_price(
    seats: int,
    major: int,
    policy: Policy,
    *,
    site: bool = False,
    segment: str | None = None,
    crossgrade: bool = False,
) -> tuple[Decimal, str]:
    """A new license's price, with the discounts that apply (the larger one, not both)."""
    fees = policy.fees_for(major)
    full = fees.site if site else fees.seat * seats
    discounts: list[tuple[Decimal, str]] = []
    if segment is not None:
        if segment not in policy.segment_percent:
            raise InvalidInput(
                f"No discount is set for the segment {segment!r}; the policy knows "
                f"{', '.join(sorted(policy.segment_percent)) or 'none'}.",
                reason="POLICY_NO_SEGMENT",
            )
        discounts.append((policy.segment_percent[segment], f"{segment} discount"))
    if crossgrade:
        discounts.append((policy.crossgrade_percent, "cross-grade discount"))
    if not discounts:
        return _money(full), "full fee"
    percent, name = max(discounts)
    return _money(full * (100 - percent) / 100), f"{name}: {_percent(percent)}% off {_money(full)}"


def policy_from_mapping(raw: Mapping[str, Any]) -> Policy:
    """A policy from a parsed configuration file (TOML); InvalidInput says what is wrong."""
    try:
        fees = {
            int(major): Fees(_amount(f["seat"]), _amount(f["site"]))
            for major, f in dict(raw["fees"]).items()
        }
        discounts = dict(raw.get("discounts", {}))
        window = raw.get("free_window_months", 3)
        if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= 120:
            raise ValueError("free_window_months is a whole number of months, 0 to 120")
        policy = Policy(
            fees=fees,
            currency=str(raw.get("currency", "EUR")),
            upgrade_percent=_percentage(raw.get("upgrade_percent", 50)),
            free_window_months=window,
            segment_percent={s: _percentage(discounts[s]) for s in SEGMENTS if s in discounts},
            crossgrade_percent=_percentage(discounts.get("crossgrade", 0)),
            protection={
                str(k): v if isinstance(v, date) else date.fromisoformat(str(v))
                for k, v in dict(raw.get("upgrade_protection", {})).items()
            },
        )
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise InvalidInput(
            f"The policy file is incomplete or wrong ({exc!s}); it needs [fees.N] with seat "
            "and site for every major release quoted, percentages from 0 to 100, and a "
            "window in whole months.",
            reason="POLICY_INVALID",
        ) from None
    return policy


def _amount(value: object) -> Decimal:
    """A fee: a finite amount, not negative."""
    amount = Decimal(str(value))
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"a fee must be an amount of 0 or more, not {value!r}")
    return amount


def _percentage(value: object) -> Decimal:
    """A percentage: finite, from 0 to 100."""
    if isinstance(value, bool):
        raise ValueError("a percentage is a number")
    percent = Decimal(str(value))
    if not percent.is_finite() or not 0 <= percent <= 100:
        raise ValueError(f"a percentage lies between 0 and 100, not {value!r}")
    return percent


@dataclass(frozen=True)
class Candidate:
    """One installed license, seen from the target release."""

    license_id: str
    kind: str
    seats: int
    major: int
    counts_after: bool
    path: UpgradePath
    note: str


@dataclass(frozen=True)
class Preview:
    """What moving to a target release does to a server's seats, before anyone buys."""

    current_major: int
    target_major: int
    seats_now: int
    seats_without_upgrades: int
    seats_with_upgrades: int
    users_enabled: int
    candidates: tuple[Candidate, ...]

    @property
    def summary(self) -> str:
        """One paragraph a person reads."""
        text = (
            f"Under OfficeStatus {self.target_major}, {self.seats_without_upgrades} of today's "
            f"{self.seats_now} seats would count without upgrades"
        )
        short = self.users_enabled - self.seats_without_upgrades
        if short > 0:
            text += f", leaving {short} of {self.users_enabled} enabled users without a seat"
        text += (
            f". Upgrading every license that can be upgraded gives {self.seats_with_upgrades} "
            "seats; whether an upgrade is free or discounted depends on the purchase date "
            "and the release date (ask Key Metric Software for a quote)."
        )
        return text


def preview_upgrade(
    installed: Iterable[tuple[str, LicenseKey | None]],
    current_major: int,
    target_major: int,
    seats_now: int,
    users_enabled: int,
) -> Preview:
    """See installed licenses (id, verified key or None) from the target release."""
    installed = list(installed)
    later = {
        key.upgrades_license_id: license_id
        for license_id, key in installed
        if key is not None and key.upgrades_license_id not in (None, license_id)
    }
    candidates = [
        _candidate(license_id, key, target_major, later.get(license_id))
        for license_id, key in installed
    ]
    without = sum(c.seats for c in candidates if c.counts_after)
    upgraded = without + sum(c.seats for c in candidates if c.path is UpgradePath.UPGRADE)
    return Preview(
        current_major,
        target_major,
        seats_now,
        without,
        upgraded,
        users_enabled,
        tuple(candidates),
    )


def _candidate(
    license_id: str, key: LicenseKey | None, target_major: int, upgraded_by: str | None = None
) -> Candidate:
    if key is None:
        facts = Facts(False, None, 0, target_major)
    else:
        facts = Facts(True, key.kind, key.major_version, target_major, upgraded_by)
    rule = first_rule(facts)
    return Candidate(
        license_id,
        _kind(facts),
        key.seats if key is not None else 0,
        facts.major,
        rule.counts_after,
        rule.path,
        rule.preview(facts),
    )
