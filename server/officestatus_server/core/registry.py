"""The registry: what is installed and who is enabled, and the seats that follow from it.

Rules, in short:

- Seats are the sum over installed licenses that verify, carry seats and are for this
  server's major version. Other licenses are listed with the reason they do not count.
- Users hold seats in the order they were enabled; enabled users beyond the seats are
  over capacity (and denied at login, see `login`).
- Support runs one year from the latest purchase date among the counting licenses.

A registry is a frozen value; `apply` makes the registry after a change. What is derived
from it is computed once per registry, and what depends only on the licenses is handed on
to the next registry when a change leaves the licenses as they were.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cached_property

from officestatus_server.core.evaluation import Evaluation, evaluation_end, evaluation_span
from officestatus_server.core.keys import LicenseKey, LicenseKind
from officestatus_server.core.legacy_keys import is_legacy
from officestatus_server.core.model import Change, Installation, InstalledLicense, User
from officestatus_server.core.names import name_key
from officestatus_server.core.texts import count
from officestatus_server.core.versions import SERVER_MAJOR


def not_counting_reason(lic: InstalledLicense, major: int = SERVER_MAJOR) -> str | None:
    """Why an installed license's seats do not count on this server, or None if they do."""
    key = lic.key
    if key is None:
        return lic.problem or "the key no longer verifies"
    if key.major_version != major:
        reason = f"{key.major_version}.x license: does not count on {major}.x"
        # A 3.x-5.x key, carried by a takeover: the way to its seats is an upgrade.
        if is_legacy(lic.key_text) and key.major_version < major:
            reason += "; request an upgrade"
        return reason
    if not key.kind.carries_seats:
        return "evaluation extension: carries no seats"
    return None


def year_after(purchase: date) -> date:
    """One year after a purchase (28 February for a purchase on 29 February)."""
    try:
        return purchase.replace(year=purchase.year + 1)
    except ValueError:
        return purchase.replace(year=purchase.year + 1, day=28)


@dataclass(frozen=True)
class Counted:
    """A license whose seats count, as the status lists it."""

    license_id: str
    seats: int
    kind: str


@dataclass(frozen=True)
class NotCounted:
    """An installed license whose seats do not count, and why."""

    license_id: str
    reason: str


def keyed_users(users: Iterable[User]) -> dict[str, User]:
    """Users by name key, as a registry holds them."""
    return {name_key(u.name): u for u in users}


@dataclass(frozen=True)
class Registry:
    """What is installed and who is enabled: the whole state the rules read."""

    installation: Installation
    licenses: tuple[InstalledLicense, ...] = ()
    users: Mapping[str, User] = field(default_factory=dict)
    major: int = SERVER_MAJOR
    # Carried forward by `apply` from the change rather than counted over all users
    # again; counted when not given.
    enabled_total: int = -1
    last_seq: int = -1

    def __post_init__(self) -> None:
        if self.enabled_total < 0:
            object.__setattr__(
                self, "enabled_total", sum(1 for u in self.users.values() if u.enabled)
            )
        if self.last_seq < 0:
            seqs = (u.enable_seq or 0 for u in self.users.values())
            object.__setattr__(self, "last_seq", max(seqs, default=0))

    @classmethod
    def build(
        cls,
        installation: Installation,
        licenses: Iterable[InstalledLicense],
        users: Iterable[User],
        major: int = SERVER_MAJOR,
    ) -> Registry:
        """A registry from stored rows."""
        return cls(installation, tuple(licenses), keyed_users(users), major)

    # --- derived from the licenses, computed once per registry ------------------------

    @cached_property
    def counting_licenses(self) -> tuple[InstalledLicense, ...]:
        """The installed licenses whose seats count, in install order."""
        return tuple(lic for lic in self.licenses if not_counting_reason(lic, self.major) is None)

    @cached_property
    def seats(self) -> int:
        """Seats from the counting licenses (25 + 10 = 35)."""
        return sum(lic.key.seats for lic in self.counting_licenses if lic.key is not None)

    @cached_property
    def extensions(self) -> tuple[LicenseKey, ...]:
        """Evaluation extensions installed here that apply to this installation."""
        return tuple(
            lic.key
            for lic in self.licenses
            if lic.key is not None
            and lic.key.kind is LicenseKind.EVALUATION_EXTENSION
            and lic.key.major_version == self.major
            and lic.key.installation_id == self.installation.installation_id
        )

    @cached_property
    def evaluation_end(self) -> datetime:
        """When the evaluation ends, if nothing else ends it first."""
        return evaluation_end(self.installation, self.extensions)

    @cached_property
    def support_until(self) -> date | None:
        """The day support ends: one year after the latest purchase among counting licenses."""
        dates = [lic.key.purchase_date for lic in self.counting_licenses if lic.key is not None]
        return year_after(max(dates)) if dates else None

    @cached_property
    def counted_rows(self) -> tuple[Counted, ...]:
        """The counting licenses' seats, one row each, as the status lists them."""
        return tuple(
            Counted(lic.license_id, lic.key.seats, lic.key.kind.value)
            for lic in self.counting_licenses
            if lic.key is not None
        )

    @cached_property
    def not_counted_rows(self) -> tuple[NotCounted, ...]:
        """The installed licenses whose seats do not count, one row each with why."""
        return tuple(
            NotCounted(lic.license_id, reason)
            for lic in self.licenses
            if (reason := not_counting_reason(lic, self.major)) is not None
        )

    # --- derived from the users -------------------------------------------------------

    @cached_property
    def enabled_order(self) -> tuple[str, ...]:
        """Name keys of the enabled users, first enabled first."""
        enabled = [(u.enable_seq or 0, k) for k, u in self.users.items() if u.enabled]
        return tuple(k for _, k in sorted(enabled))

    @cached_property
    def rank(self) -> Mapping[str, int]:
        """Each enabled user's place in the enable order, from 0."""
        return {k: i for i, k in enumerate(self.enabled_order)}

    @property
    def next_seq(self) -> int:
        """The enable sequence number the next enabled user gets."""
        return self.last_seq + 1

    def license(self, license_id: str) -> InstalledLicense | None:
        """The installed license with that id."""
        return next((lic for lic in self.licenses if lic.license_id == license_id), None)

    def user(self, name: str) -> User | None:
        """The user with that name, compared case-insensitively."""
        return self.users.get(name_key(name))

    def enabled_count(self) -> int:
        """How many users are enabled."""
        return self.enabled_total

    @cached_property
    def oversubscribed(self) -> bool:
        """More users are enabled than there are seats (only then does order matter)."""
        return self.enabled_total > self.seats

    # --- state at a moment --------------------------------------------------------------

    def evaluation(self, now: datetime) -> Evaluation:
        """The evaluation at `now`.

        It changes only at whole days before its end, so the answer is kept with the
        span of time it holds for: every login asks, and within a span gets the same
        object back."""
        held = self.__dict__.get("_evaluation_span")
        if held is not None and held[0] <= now < held[1]:
            return held[2]  # type: ignore[no-any-return]
        span = evaluation_span(self.installation, self.evaluation_end, now)
        self.__dict__["_evaluation_span"] = span
        return span[2]

    def seats_used(self, now: datetime) -> int:
        """Enabled users holding a seat (all of them during an evaluation)."""
        if self.evaluation(now).active:
            return self.enabled_count()
        return min(self.enabled_count(), self.seats)

    def over_capacity(self, now: datetime) -> list[str]:
        """Names of enabled users beyond the seats, in enable order. With no seats at all
        nobody is "over capacity": logins are refused as not licensed or evaluation expired."""
        if self.seats == 0 or not self.oversubscribed or self.evaluation(now).active:
            return []
        return [self.users[k].name for k in self.enabled_order[self.seats :]]

    def seats_phrase(self, now: datetime, enabled: int | None = None) -> str:
        """ "35 of 35 seats in use", or the evaluation's state; `enabled` says it for
        another number of enabled users (after a change still being planned)."""
        evaluation = self.evaluation(now)
        enabled = self.enabled_count() if enabled is None else enabled
        if evaluation.active:
            return (
                f"evaluation, {count(evaluation.days_left, 'day')} left: "
                f"{count(enabled, 'user')} enabled, no seat limit"
            )
        phrase = f"{min(enabled, self.seats)} of {self.seats} seats in use"
        over = enabled - self.seats
        if over > 0 and self.seats > 0:
            phrase += f", {count(over, 'enabled user')} over capacity"
        if evaluation.expired and self.seats == 0:
            phrase += " (the evaluation has ended)"
        return phrase

    # --- changes ------------------------------------------------------------------------

    def apply(self, change: Change) -> Registry:
        """The registry after `change` was committed."""
        licenses = self.licenses
        if change.remove_licenses:
            removed = set(change.remove_licenses)
            licenses = tuple(lic for lic in licenses if lic.license_id not in removed)
        users = dict(self.users)
        enabled, last_seq = self.enabled_total, self.last_seq
        for name in change.remove_users:
            gone = users.pop(name_key(name), None)
            enabled -= int(gone is not None and gone.enabled)
        for user in change.put_users:
            key = name_key(user.name)
            before = users.get(key)
            enabled += int(user.enabled) - int(before is not None and before.enabled)
            last_seq = max(last_seq, user.enable_seq or 0)
            users[key] = user
        installation = self.installation
        if change.evaluation_ended_at is not None and installation.evaluation_ended_at is None:
            installation = replace(installation, evaluation_ended_at=change.evaluation_ended_at)
        if change.clock_set_back is not None and installation.clock_set_back is None:
            installation = replace(installation, clock_set_back=change.clock_set_back)
        after = Registry(
            installation, licenses + change.add_licenses, users, self.major, enabled, last_seq
        )
        if not change.add_licenses and not change.remove_licenses:
            # Same licenses: what was derived from them still holds, and is not computed
            # again after every change to the users.
            for derived in _FROM_LICENSES:
                if derived in self.__dict__:
                    after.__dict__[derived] = self.__dict__[derived]
        return after


# Cached properties that depend only on the licenses (and the fixed first start).
_FROM_LICENSES = (
    "counting_licenses",
    "seats",
    "extensions",
    "evaluation_end",
    "support_until",
    "counted_rows",
    "not_counted_rows",
)
