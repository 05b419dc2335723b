"""The values the rules work on: installation, installed licenses, users, changes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from officestatus_server.core.keys import LicenseKey


@dataclass(frozen=True)
class ClockSetBack:
    """The system clock was found set back: from the latest time seen to an earlier one."""

    seen: datetime
    found: datetime


@dataclass(frozen=True)
class Installation:
    """This server's identity and evaluation start, fixed at its first start."""

    installation_id: str
    first_started_at: datetime
    # Set when the first license with seats is installed: the evaluation never resumes.
    evaluation_ended_at: datetime | None = None
    # Set for good when the clock was set back: the evaluation counts as ended.
    clock_set_back: ClockSetBack | None = None


@dataclass(frozen=True)
class InstalledLicense:
    """A license key as installed. `key` is None when it no longer verifies."""

    license_id: str
    key_text: str
    installed_at: datetime
    key: LicenseKey | None
    # Why the stored key could not be read or verified (only when key is None).
    problem: str | None = None


class User(NamedTuple):
    """A user as the admin sees it. `enable_seq` orders who holds seats first.

    A named tuple rather than a frozen dataclass: a start makes one per stored user, and
    a tuple is the cheaper to make."""

    name: str
    enabled: bool
    created_at: datetime
    enabled_at: datetime | None = None
    enable_seq: int | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One admin change: what, about whom or which license, what came of it, when."""

    at: datetime
    action: str
    subject: str
    result: str


@dataclass(frozen=True)
class Change:
    """Everything one admin call changes; storage writes it in one transaction."""

    # None only for the server's own bookkeeping (the clock's high-water mark).
    audit: AuditEntry | None
    add_licenses: tuple[InstalledLicense, ...] = ()
    remove_licenses: tuple[str, ...] = ()
    # Inserted or replaced, matched case-insensitively by name.
    put_users: tuple[User, ...] = ()
    # Deleted, matched case-insensitively by name (before put_users are written).
    remove_users: tuple[str, ...] = ()
    evaluation_ended_at: datetime | None = None
    # The latest time the server has seen, and the first time the clock was found set
    # back (with the time it was set back from).
    clock_high_water: datetime | None = None
    clock_set_back: ClockSetBack | None = None
    # The admin has seen the report of the takeover this installation was made by.
    takeover_report_seen: bool = False
    # Extra values for the touched users, for the caller to report.
    touched: tuple[str, ...] = field(default=())
