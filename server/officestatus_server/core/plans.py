"""What an admin may change: each call planned as one `Change`, or refused with why.

- Installing: a key for this major version, not dated in the future, not installed
  already. The first license with seats ends the evaluation; an evaluation extension must
  be for this installation and move the end later.
- Removing a license that would leave more enabled users than seats needs `force`.
- Adding and enabling: all or none; enabling needs a free seat per user (outside an
  evaluation). Disabling frees the seats at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from officestatus_server.core.evaluation import Evaluation, end_of
from officestatus_server.core.keys import LicenseKey, LicenseKind, check_not_future
from officestatus_server.core.model import AuditEntry, Change, InstalledLicense, User
from officestatus_server.core.namelists import clean_names, known_users, new_names, subject
from officestatus_server.core.registry import Registry, not_counting_reason
from officestatus_server.core.texts import count, short
from officestatus_server.errors import (
    AlreadyExists,
    NotFound,
    PreconditionFailed,
    SeatsExhausted,
)


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
    if end_of(key.evaluation_until) <= now:
        raise PreconditionFailed(
            f"This extension ran until {key.evaluation_until.isoformat()}, which has passed. "
            "Ask Key Metric Software for a new one.",
            reason="EXTENSION_EXPIRED",
        )
    if end_of(key.evaluation_until) <= evaluation.ends_at:
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
            f"No license {short(license_id)!r} is installed. List the licenses to see their ids.",
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
            f"users: disable {count(over, 'user')} first, or force the removal (the "
            f"{count(over, 'user')} enabled last are then denied at login).",
            reason="REMOVAL_EXCEEDS_SEATS",
        )
    result = f"removed; {seats_after} seats in all"
    if over > 0:
        result += f"; forced: {count(over, 'enabled user')} over capacity"
    return Change(
        audit=AuditEntry(now, "license.remove", license_id, result),
        remove_licenses=(license_id,),
    )


def check_seats(registry: Registry, needed: int, now: datetime) -> None:
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
            f"install a license, or disable {count(over + needed, 'user')} to enable "
            f"{count(needed, 'more')}."
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
    names = clean_names(raw_names)
    new_names(registry, names)
    if enable:
        check_seats(registry, len(names), now)
    seq = registry.next_seq
    users = tuple(
        User(n, True, now, now, seq + i) if enable else User(n, False, now)
        for i, n in enumerate(names)
    )
    verb = "added and enabled" if enable else "added"
    return Change(
        audit=AuditEntry(now, "users.add", subject(names), f"{verb} {count(len(names), 'user')}"),
        put_users=users,
        touched=tuple(names),
    )


def plan_enable(registry: Registry, raw_names: Iterable[str], now: datetime) -> Change:
    """Enable users (all or none): each newly enabled user takes a free seat."""
    users = known_users(registry, clean_names(raw_names))
    to_enable = [u for u in users if not u.enabled]
    check_seats(registry, len(to_enable), now)
    seq = registry.next_seq
    put = tuple(
        u._replace(enabled=True, enabled_at=now, enable_seq=seq + i)
        for i, u in enumerate(to_enable)
    )
    enabled_after = registry.enabled_count() + len(put)
    result = f"enabled {count(len(put), 'user')} ({len(users) - len(put)} already enabled); " + (
        registry.seats_phrase(now, enabled_after)
    )
    return Change(
        audit=AuditEntry(now, "users.enable", subject([u.name for u in users]), result),
        put_users=put,
        touched=tuple(u.name for u in users),
    )


def plan_disable(registry: Registry, raw_names: Iterable[str], now: datetime) -> Change:
    """Disable users: their seats are free at once."""
    users = known_users(registry, clean_names(raw_names))
    put = tuple(
        u._replace(enabled=False, enabled_at=None, enable_seq=None) for u in users if u.enabled
    )
    enabled_after = registry.enabled_count() - len(put)
    result = f"disabled {count(len(put), 'user')} ({len(users) - len(put)} already disabled); " + (
        registry.seats_phrase(now, enabled_after)
    )
    return Change(
        audit=AuditEntry(now, "users.disable", subject([u.name for u in users]), result),
        put_users=put,
        touched=tuple(u.name for u in users),
    )
