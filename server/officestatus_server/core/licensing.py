"""The licensing rules: seats, evaluation, support, who may log in, what an admin may change.

Everything here is a pure function of a `Registry` (what is installed and who is enabled)
and `now`. Rules, in short:

- Seats are the sum over installed licenses that verify, carry seats and are for this
  server's major version. Other licenses are listed with the reason they do not count.
- A new installation evaluates for 30 days with no seat limit; an extension key bound to
  the installation moves the end; the first license with seats ends it for good.
- Users hold seats in the order they were enabled; enabled users beyond the seats are
  over capacity and denied at login.
- Enabling needs a free seat (outside an evaluation); removing a license that would
  leave more enabled users than seats needs `force`.
- Support runs one year from the latest purchase date among the counting licenses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import NamedTuple

from officestatus_server.core.keys import LicenseKey, LicenseKind, check_not_future
from officestatus_server.core.model import (
    AuditEntry,
    Change,
    ClockSetBack,
    Deny,
    Installation,
    InstalledLicense,
    User,
)
from officestatus_server.core.names import clean_name, name_key
from officestatus_server.core.versions import SERVER_MAJOR
from officestatus_server.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PreconditionFailed,
    SeatsExhausted,
)

EVALUATION_DAYS = 30
# How far the clock may step back (time zone slips, NTP corrections) before it counts as
# set back on purpose.
CLOCK_TOLERANCE = timedelta(hours=1)
MAX_USERS_PER_CALL = 10_000
_DAY = timedelta(days=1)
_ALWAYS_FROM = datetime.min.replace(tzinfo=UTC)
_ALWAYS_UNTIL = datetime.max.replace(tzinfo=UTC)


def not_counting_reason(lic: InstalledLicense, major: int = SERVER_MAJOR) -> str | None:
    """Why an installed license's seats do not count on this server, or None if they do."""
    key = lic.key
    if key is None:
        return lic.problem or "the key no longer verifies"
    if key.major_version != major:
        return f"{key.major_version}.x license: does not count on {major}.x"
    if not key.kind.carries_seats:
        return "evaluation extension: carries no seats"
    return None


def support_until(purchase: date) -> date:
    """One year after a purchase (28 February for a purchase on 29 February)."""
    try:
        return purchase.replace(year=purchase.year + 1)
    except ValueError:
        return purchase.replace(year=purchase.year + 1, day=28)


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


@dataclass(frozen=True)
class Counted:
    """A license whose seats count."""

    license_id: str
    seats: int
    kind: str


@dataclass(frozen=True)
class NotCounted:
    """An installed license whose seats do not count, and why."""

    license_id: str
    reason: str


class Decision(NamedTuple):
    """The answer to a login or heartbeat, before it is shaped for a client release.
    (A named tuple: immutable, and made on every login at a third of a frozen
    dataclass's cost.)"""

    granted: bool
    reason: Deny
    message: str
    user_name: str = ""


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
    # Kept up to date by `apply` rather than counted again: with 100,000 users a count
    # per change would cost more than the change. Counted when not given.
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

    # --- derived, computed once per registry ------------------------------------------

    @cached_property
    def counting(self) -> tuple[InstalledLicense, ...]:
        """The licenses whose seats count, in install order."""
        return tuple(lic for lic in self.licenses if not_counting_reason(lic, self.major) is None)

    @cached_property
    def seats(self) -> int:
        """Seats from the counting licenses (25 + 10 = 35)."""
        return sum(lic.key.seats for lic in self.counting if lic.key is not None)

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

    @cached_property
    def _evaluation_end(self) -> datetime:
        end = self.installation.first_started_at + timedelta(days=EVALUATION_DAYS)
        for ext in self.extensions:
            assert ext.evaluation_until is not None
            end = max(end, _end_of(ext.evaluation_until))
        return end

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

    def license(self, license_id: str) -> InstalledLicense | None:
        """The installed license with that id."""
        return next((lic for lic in self.licenses if lic.license_id == license_id), None)

    def user(self, name: str) -> User | None:
        """The user with that name, compared case-insensitively."""
        return self.users.get(name_key(name))

    # --- state at a moment --------------------------------------------------------------

    def evaluation(self, now: datetime) -> Evaluation:
        """The evaluation at `now`.

        It changes only at whole days before its end, so the answer is kept with the
        span of time it holds for: every login asks, and within a span gets the same
        object back."""
        held = self.__dict__.get("_evaluation_span")
        if held is not None and held[0] <= now < held[1]:
            return held[2]  # type: ignore[no-any-return]
        span = self._evaluation_span_at(now)
        self.__dict__["_evaluation_span"] = span
        return span[2]

    def _evaluation_span_at(self, now: datetime) -> tuple[datetime, datetime, Evaluation]:
        """The evaluation at `now`, and from when until when (exclusive) it holds."""
        if self.installation.evaluation_ended_at is not None:
            ended = Evaluation(active=False, ends_at=None, days_left=0, expired=False)
            return _ALWAYS_FROM, _ALWAYS_UNTIL, ended
        end = self._evaluation_end
        if self.installation.clock_set_back is not None:
            set_back = Evaluation(False, end, 0, expired=True, clock_set_back=True)
            return _ALWAYS_FROM, _ALWAYS_UNTIL, set_back
        if now < end:
            # Whole days left, rounded up, exactly: (days - 1) days < end - now <= days.
            days = -((now - end) // _DAY)
            active = Evaluation(active=True, ends_at=end, days_left=days, expired=False)
            return end - days * _DAY, end - (days - 1) * _DAY, active
        return end, _ALWAYS_UNTIL, Evaluation(active=False, ends_at=end, days_left=0, expired=True)

    def enabled_count(self) -> int:
        """How many users are enabled."""
        return self.enabled_total

    @cached_property
    def oversubscribed(self) -> bool:
        """More users are enabled than there are seats (only then does order matter)."""
        return self.enabled_total > self.seats

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

    def support_until(self) -> date | None:
        """One year after the latest purchase among counting licenses."""
        return self._support_until

    @cached_property
    def _support_until(self) -> date | None:
        dates = [lic.key.purchase_date for lic in self.counting if lic.key is not None]
        return support_until(max(dates)) if dates else None

    @cached_property
    def counted(self) -> tuple[Counted, ...]:
        """The counting licenses' seats, as the status lists them."""
        return tuple(
            Counted(lic.license_id, lic.key.seats, lic.key.kind.value)
            for lic in self.counting
            if lic.key is not None
        )

    @cached_property
    def not_counted(self) -> tuple[NotCounted, ...]:
        """The installed licenses whose seats do not count, each with why."""
        return tuple(
            NotCounted(lic.license_id, reason)
            for lic in self.licenses
            if (reason := not_counting_reason(lic, self.major)) is not None
        )

    def seats_phrase(self, now: datetime, enabled: int | None = None) -> str:
        """ "35 of 35 seats in use", or the evaluation's state; `enabled` says it for
        another number of enabled users (after a change still being planned)."""
        evaluation = self.evaluation(now)
        enabled = self.enabled_count() if enabled is None else enabled
        if evaluation.active:
            return (
                f"evaluation, {_count(evaluation.days_left, 'day')} left: "
                f"{_count(enabled, 'user')} enabled, no seat limit"
            )
        phrase = f"{min(enabled, self.seats)} of {self.seats} seats in use"
        over = enabled - self.seats
        if over > 0 and self.seats > 0:
            phrase += f", {_count(over, 'enabled user')} over capacity"
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
            # Same licenses: what was derived from them still holds (1,000 licenses are
            # not walked again after every enable).
            for derived in _FROM_LICENSES:
                if derived in self.__dict__:
                    after.__dict__[derived] = self.__dict__[derived]
        return after


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


# Cached properties that depend only on the licenses (and the fixed first start).
_FROM_LICENSES = (
    "counting",
    "seats",
    "extensions",
    "_evaluation_end",
    "_support_until",
    "counted",
    "not_counted",
)


def _end_of(day: date) -> datetime:
    """An evaluation that runs until a date runs through that whole day (UTC)."""
    return datetime.combine(day + _DAY, time(), tzinfo=UTC)


# --- login ----------------------------------------------------------------------------


def decide_login(registry: Registry, raw_name: str, now: datetime) -> Decision:
    """May this user use OfficeStatus now? Each refusal has its own reason and message."""
    try:
        name = clean_name(raw_name)
    except InvalidInput as exc:
        return Decision(False, Deny.USER_UNKNOWN, f"{exc.message} Sign in with your user name.")
    user = registry.user(name)
    if user is None:
        return Decision(
            False,
            Deny.USER_UNKNOWN,
            f"OfficeStatus does not know the user '{name}'. Ask your administrator to add "
            "you to the OfficeStatus License Server.",
            name,
        )
    return standing(registry, user, now)


def standing(registry: Registry, user: User, now: datetime) -> Decision:
    """Whether a known user holds a seat now."""
    name = user.name
    if not user.enabled:
        return Decision(
            False,
            Deny.USER_DISABLED,
            f"The user '{name}' is disabled in OfficeStatus. Ask your administrator to enable you.",
            name,
        )
    evaluation = registry.evaluation(now)
    if evaluation.active:
        return Decision(
            True,
            Deny.NONE,
            f"Welcome, {name}. OfficeStatus is being evaluated: "
            f"{_count(evaluation.days_left, 'day')} left.",
            name,
        )
    if evaluation.expired and registry.seats == 0:
        if evaluation.clock_set_back:
            why = "The OfficeStatus evaluation has ended: this computer's clock was set back."
        else:
            ended = evaluation.ends_at.date().isoformat() if evaluation.ends_at else ""
            why = f"The OfficeStatus evaluation ended on {ended}."
        return Decision(
            False,
            Deny.EVALUATION_EXPIRED,
            f"{why} Ask your administrator to install a license.",
            name,
        )
    if registry.seats == 0:
        return Decision(
            False,
            Deny.NOT_LICENSED,
            f"OfficeStatus {registry.major} has no license installed. Ask your administrator "
            "to install a license.",
            name,
        )
    # The enable order is only looked at when there are more enabled users than seats.
    if registry.oversubscribed and registry.rank[name_key(name)] >= registry.seats:
        return Decision(
            False,
            Deny.OVER_CAPACITY,
            f"{_seats_taken(registry.seats)} "
            "Ask your administrator to disable a user or install more seats.",
            name,
        )
    return Decision(True, Deny.NONE, f"Welcome, {name}.", name)


# --- admin changes ----------------------------------------------------------------------


def plan_install(registry: Registry, key: LicenseKey, key_text: str, now: datetime) -> Change:
    """Install a verified key, or say why not. The first seat license ends the evaluation."""
    check_not_future(key, now.date())
    existing = registry.license(key.license_id)
    if existing is not None:
        raise AlreadyExists(
            f"License {key.license_id} is installed already (since "
            f"{existing.installed_at.date().isoformat()}); a license counts once.",
            reason="LICENSE_ALREADY_INSTALLED",
        )
    major = registry.major
    if key.major_version < major:
        raise PreconditionFailed(
            f"This is a license for OfficeStatus {key.major_version}: licenses for "
            f"OfficeStatus {key.major_version} do not work with OfficeStatus {major}; an "
            "upgrade is available at a discount from Key Metric Software.",
            reason="LICENSE_OLDER_MAJOR",
        )
    if key.major_version > major:
        raise PreconditionFailed(
            f"This is a license for OfficeStatus {key.major_version}: upgrade this server to "
            f"OfficeStatus {key.major_version} first, then install it.",
            reason="LICENSE_NEWER_MAJOR",
        )
    evaluation = registry.evaluation(now)
    lic = InstalledLicense(key.license_id, key_text, now, key)
    if key.kind is LicenseKind.EVALUATION_EXTENSION:
        _check_extension(registry, key, evaluation, now)
        assert key.evaluation_until is not None
        return Change(
            audit=AuditEntry(
                now,
                "license.install",
                key.license_id,
                f"evaluation extended until {key.evaluation_until.isoformat()}",
            ),
            add_licenses=(lic,),
        )
    seats = registry.seats + key.seats
    ended = now if registry.installation.evaluation_ended_at is None else None
    result = f"installed: {key.seats} seats ({key.kind.value}); {seats} seats in all"
    if ended is not None:
        result += "; evaluation ended"
    return Change(
        audit=AuditEntry(now, "license.install", key.license_id, result),
        add_licenses=(lic,),
        evaluation_ended_at=ended,
    )


def _check_extension(
    registry: Registry, key: LicenseKey, evaluation: Evaluation, now: datetime
) -> None:
    here = registry.installation.installation_id
    if key.installation_id != here:
        raise PreconditionFailed(
            f"This evaluation extension is for installation {key.installation_id}; this "
            f"server is installation {here}. Ask Key Metric Software for an extension for "
            f"{here}.",
            reason="EXTENSION_OTHER_INSTALLATION",
        )
    if evaluation.clock_set_back:
        raise PreconditionFailed(
            "The evaluation ended because the system clock was set back; an extension no "
            "longer applies. Install a purchased license.",
            reason="EVALUATION_CLOCK_SET_BACK",
        )
    if evaluation.ended_by_purchase:
        raise PreconditionFailed(
            "The evaluation ended when a license was installed; an extension no longer applies.",
            reason="EVALUATION_ALREADY_ENDED",
        )
    assert key.evaluation_until is not None
    assert evaluation.ends_at is not None
    if _end_of(key.evaluation_until) <= now:
        raise PreconditionFailed(
            f"This extension ran until {key.evaluation_until.isoformat()}, which has passed. "
            "Ask Key Metric Software for a new one.",
            reason="EXTENSION_EXPIRED",
        )
    if _end_of(key.evaluation_until) <= evaluation.ends_at:
        raise PreconditionFailed(
            f"This extension runs until {key.evaluation_until.isoformat()}, but the "
            f"evaluation already runs until {evaluation.ends_at.date().isoformat()}.",
            reason="EXTENSION_DOES_NOT_EXTEND",
        )


def plan_remove(registry: Registry, license_id: str, force: bool, now: datetime) -> Change:
    """Remove a license; refused when it leaves more enabled users than seats, unless forced."""
    lic = registry.license(license_id)
    if lic is None:
        raise NotFound(
            f"No license {_short(license_id)!r} is installed. List the licenses to see their ids.",
            reason="LICENSE_NOT_FOUND",
        )
    counts = not_counting_reason(lic, registry.major) is None
    seats_after = registry.seats - (lic.key.seats if counts and lic.key else 0)
    enabled = registry.enabled_count()
    evaluation = registry.evaluation(now)
    over = enabled - seats_after if counts and not evaluation.active else 0
    if over > 0 and not force:
        raise PreconditionFailed(
            f"Removing license {license_id} leaves {seats_after} seats for {enabled} enabled "
            f"users: disable {_count(over, 'user')} first, or force the removal (the "
            f"{_count(over, 'user')} enabled last are then denied at login).",
            reason="REMOVAL_EXCEEDS_SEATS",
        )
    result = f"removed; {seats_after} seats in all"
    if over > 0:
        result += f"; forced: {_count(over, 'enabled user')} over capacity"
    return Change(
        audit=AuditEntry(now, "license.remove", license_id, result),
        remove_licenses=(license_id,),
    )


def _clean_names(raw_names: Iterable[str]) -> list[str]:
    raw = list(raw_names)
    if not raw:
        raise InvalidInput("Name at least one user.", reason="USER_NAMES_EMPTY")
    # Counted before anything else: a huge list is refused without cleaning each name.
    if len(raw) > MAX_USERS_PER_CALL:
        raise InvalidInput(
            f"At most {MAX_USERS_PER_CALL} users in one call; split the list.",
            reason="TOO_MANY_USERS",
        )
    names = [clean_name(n) for n in raw]
    seen: set[str] = set()
    for name in names:
        if name_key(name) in seen:
            raise InvalidInput(
                f"The user {_short(name)!r} is named twice (names compare regardless of case).",
                reason="USER_NAME_DUPLICATE",
            )
        seen.add(name_key(name))
    return names


def _known(registry: Registry, names: list[str]) -> list[User]:
    missing = [n for n in names if registry.user(n) is None]
    if missing:
        raise NotFound(
            f"No such user: {', '.join(_short(n) for n in missing[:10])}"
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
            + ". Add them first.",
            reason="USER_NOT_FOUND",
        )
    return [u for n in names if (u := registry.user(n)) is not None]


def _check_seats(registry: Registry, needed: int, now: datetime) -> None:
    if needed == 0 or registry.evaluation(now).active:
        return
    enabled = registry.enabled_count()
    free = max(registry.seats - enabled, 0)
    if needed <= free:
        return
    if registry.seats == 0:
        raise SeatsExhausted(
            "No seats: no license is installed and the evaluation has ended. Install a "
            "license to enable users.",
            reason="SEATS_EXHAUSTED",
        )
    used = min(enabled, registry.seats)
    if enabled > registry.seats:
        over = enabled - registry.seats
        message = (
            f"{enabled} users are enabled on {registry.seats} seats ({over} over capacity): "
            f"install a license, or disable {_count(over + needed, 'user')} to enable "
            f"{_count(needed, 'more')}."
        )
    elif needed == 1:
        message = f"{used} of {registry.seats} seats in use: install a license or disable a user."
    else:
        message = (
            f"Enabling {needed} users needs {needed} free seats, but {used} of "
            f"{registry.seats} seats are in use ({free} free): install a license or "
            "disable users."
        )
    raise SeatsExhausted(message, reason="SEATS_EXHAUSTED")


def plan_add_users(
    registry: Registry, raw_names: Iterable[str], enable: bool, now: datetime
) -> Change:
    """Add users (all or none), enabling them at once if asked and seats allow."""
    names = _clean_names(raw_names)
    existing = [n for n in names if registry.user(n) is not None]
    if existing:
        raise AlreadyExists(
            f"Already a user: {', '.join(_short(n) for n in existing[:10])}. Names compare "
            "regardless of case.",
            reason="USER_EXISTS",
        )
    if enable:
        _check_seats(registry, len(names), now)
    seq = registry.next_seq
    users = tuple(
        User(n, True, now, now, seq + i) if enable else User(n, False, now)
        for i, n in enumerate(names)
    )
    verb = "added and enabled" if enable else "added"
    return Change(
        audit=AuditEntry(now, "users.add", _subject(names), f"{verb} {_count(len(names), 'user')}"),
        put_users=users,
        touched=tuple(names),
    )


def plan_enable(registry: Registry, raw_names: Iterable[str], now: datetime) -> Change:
    """Enable users (all or none): each newly enabled user takes a free seat."""
    users = _known(registry, _clean_names(raw_names))
    to_enable = [u for u in users if not u.enabled]
    _check_seats(registry, len(to_enable), now)
    seq = registry.next_seq
    put = tuple(
        u._replace(enabled=True, enabled_at=now, enable_seq=seq + i)
        for i, u in enumerate(to_enable)
    )
    enabled_after = registry.enabled_count() + len(put)
    result = f"enabled {_count(len(put), 'user')} ({len(users) - len(put)} already enabled); " + (
        registry.seats_phrase(now, enabled_after)
    )
    return Change(
        audit=AuditEntry(now, "users.enable", _subject([u.name for u in users]), result),
        put_users=put,
        touched=tuple(u.name for u in users),
    )


def plan_disable(registry: Registry, raw_names: Iterable[str], now: datetime) -> Change:
    """Disable users: their seats are free at once."""
    users = _known(registry, _clean_names(raw_names))
    put = tuple(
        u._replace(enabled=False, enabled_at=None, enable_seq=None) for u in users if u.enabled
    )
    enabled_after = registry.enabled_count() - len(put)
    result = f"disabled {_count(len(put), 'user')} ({len(users) - len(put)} already disabled); " + (
        registry.seats_phrase(now, enabled_after)
    )
    return Change(
        audit=AuditEntry(now, "users.disable", _subject([u.name for u in users]), result),
        put_users=put,
        touched=tuple(u.name for u in users),
    )


def _seats_taken(seats: int) -> str:
    """Why an over-capacity user gets no seat, for one seat or many."""
    if seats == 1:
        return "The one OfficeStatus seat is held by a user enabled before you."
    return f"All {seats} OfficeStatus seats are held by users enabled before you."


def _count(n: int, noun: str) -> str:
    """ "1 user", "2 users"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _short(text: str, limit: int = 60) -> str:
    """Input as a message repeats it, cut short: a refusal must not grow with its input."""
    return text if len(text) <= limit else text[:limit] + "…"


def _subject(names: list[str]) -> str:
    shown = ", ".join(names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")
