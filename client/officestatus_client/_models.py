"""What the server answers, as frozen dataclasses: callers never see protobuf objects.

Dates and timestamps the wire carries as ISO strings are `date` and `datetime` here; an
empty string on the wire, like an empty optional identifier, is None.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from officestatus.wire import DenyReason

# --- client protocol (SeatService) ----------------------------------------------------


@dataclass(frozen=True)
class Handshake:
    """What the server is, and which of the asked-for capabilities it has on."""

    server_version: str
    minimum_client_version: str
    capabilities: tuple[str, ...]
    major_version: int


@dataclass(frozen=True)
class LicenseInfo:
    """The license state as a 6.x client shows it; `seats_total` means nothing if unlimited."""

    seats_total: int
    seats_used: int
    evaluation: bool
    evaluation_days_left: int
    major_version: int
    unlimited: bool


@dataclass(frozen=True)
class LoginResult:
    """May this user use OfficeStatus; if so, the session to keep alive."""

    granted: bool
    message: str
    reason: DenyReason
    session_id: str
    # 0 means: do not heartbeat.
    heartbeat_interval_seconds: int
    license: LicenseInfo | None


@dataclass(frozen=True)
class LicenseStatus:
    """The license state for the About box."""

    seats_total: int
    seats_used: int
    evaluation: bool
    evaluation_days_left: int
    major_version: int
    unlimited: bool


@dataclass(frozen=True)
class HeartbeatResult:
    """Whether the session is still alive, and why not when it is not."""

    granted: bool
    reason: DenyReason
    message: str


# --- admin protocol (AdminService) ----------------------------------------------------


@dataclass(frozen=True)
class License:
    """An installed license, and whether its seats count on this server."""

    license_id: str
    product: str
    major_version: int
    seats: int
    # "purchased", "site", "evaluation-extension", "free-press", "free-offer",
    # "free-upgrade".
    kind: str
    customer: str
    purchase_date: date | None
    issue_date: date | None
    # For an upgrade license: the license it upgrades.
    upgrades_license_id: str | None
    signing_key_id: str
    installed_at: datetime | None
    counts: bool
    not_counting_reason: str | None
    # For an evaluation extension: the installation it is bound to and the new end.
    installation_id: str | None
    evaluation_until: date | None
    # The signed key text as installed (what an upgrade request sends the vendor).
    key: str = ""


@dataclass(frozen=True)
class User:
    """A user; an enabled user beyond the seats is over capacity and denied at login."""

    name: str
    enabled: bool
    created_at: datetime | None
    enabled_at: datetime | None
    over_capacity: bool


@dataclass(frozen=True)
class LicenseCount:
    """A license whose seats count, with how many."""

    license_id: str
    seats: int
    kind: str


@dataclass(frozen=True)
class NotCounting:
    """An installed license whose seats do not count here, and why."""

    license_id: str
    reason: str


@dataclass(frozen=True)
class Alert:
    """A seat or evaluation alert in force: its kind ("seats_90", "evaluation_ending"),
    what to do, since when, and its threshold (percent of the seats, or days)."""

    kind: str
    message: str
    since: datetime | None
    threshold: int


@dataclass(frozen=True)
class TakeoverSection:
    """The takeover of an older installation that made this one, as the status shows it
    until the admin has seen its report."""

    # The old server's major release: 3, 4 or 5.
    release: int
    summary: str
    # The whole report's lines (AdminClient.takeover_report).
    report_lines: int
    # The lines that need the admin's eye (merged, left out): the first 50 ...
    attention: tuple[str, ...]
    # ... and how many more there are.
    attention_more: int


@dataclass(frozen=True)
class TakeoverReportPage:
    """A page of a takeover's report; `took_over` is False when no takeover made this
    installation."""

    took_over: bool
    release: int
    summary: str
    seen: bool
    # All the report's lines, and this page's, from `offset`.
    total: int
    offset: int
    lines: tuple[str, ...]


@dataclass(frozen=True)
class TakeoverReport:
    """The whole report of the takeover that made this installation: every item taken
    over, merged or left out, and why."""

    release: int
    summary: str
    # Whether the admin has marked it seen (the status then no longer shows it).
    seen: bool
    lines: tuple[str, ...]

    @property
    def sha256(self) -> str:
        """The SHA-256 of the report as received (its lines, each ending in a newline,
        UTF-8): the takeover's audit record names the digest of the report it wrote."""
        return hashlib.sha256("".join(f"{line}\n" for line in self.lines).encode()).hexdigest()


@dataclass(frozen=True)
class Status:
    """The whole licensing state: every number with where it comes from."""

    server_version: str
    major_version: int
    installation_id: str
    counting: tuple[LicenseCount, ...]
    seats_total: int
    seats_used: int
    users_enabled: int
    # Enabled users beyond the seats, in enable order.
    over_capacity: tuple[str, ...]
    evaluation: bool
    evaluation_days_left: int
    # None when the evaluation was ended by a purchase.
    evaluation_ends_at: datetime | None
    evaluation_expired: bool
    support_until: date | None
    not_counting: tuple[NotCounting, ...]
    # One line a person reads: "35 of 35 seats in use".
    summary: str
    unlimited: bool
    active_sessions: int
    # Set when the server found the system clock set back (the evaluation then ended).
    clock_warning: str = ""
    # Set while the report of the takeover that made this installation is unseen.
    takeover: TakeoverSection | None = None
    # The seat and evaluation alerts in force.
    alerts: tuple[Alert, ...] = ()


@dataclass(frozen=True)
class AuditRecord:
    """One admin change: when, what, about what, and what came of it."""

    id: int
    at: datetime | None
    action: str
    subject: str
    result: str
    # SHA-256 chaining this record to the one before it.
    hash: str = ""
    previous_hash: str = ""


@dataclass(frozen=True)
class AuditVerification:
    """What a check of the audit log's hash chain found."""

    intact: bool
    records_checked: int
    problems: tuple[str, ...]
    # The newest record's hash: note it to prove later that nothing was rewritten.
    head_hash: str


@dataclass(frozen=True)
class TlsConfig:
    """TLS to the server: the CA that signed its certificate (None: the system's), and for
    mutual TLS this client's certificate and key (PEM files)."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None


@dataclass(frozen=True)
class UpgradeCandidate:
    """One installed license, seen from the target release."""

    license_id: str
    kind: str
    seats: int
    major_version: int
    # Whether its seats count under the target release without an upgrade.
    counts_after: bool
    # "upgrade", "buy new", "not needed", "not a license".
    path: str
    note: str


@dataclass(frozen=True)
class UpgradePreview:
    """What moving to another major release would do to the seats, before anyone buys."""

    current_major: int
    target_major: int
    seats_now: int
    seats_without_upgrades: int
    seats_with_upgrades: int
    users_enabled: int
    licenses: tuple[UpgradeCandidate, ...]
    summary: str


@dataclass(frozen=True)
class SignedIn:
    """One line of who is signed in: a live session (5.x and later clients), or the last
    login from one machine of a 3.x or 4.x client, which holds no session."""

    user_name: str
    # None when the client sent no machine name (3.x clients never do).
    machine_name: str | None
    # The client_version it sent ("5.2.0"); None when it sent none.
    client_version: str | None
    # The client protocol release, 3 to 6.
    client_release: int
    # True: a live session; False: a last login.
    session: bool
    # When it signed in (a last login: when it logged in); None when not known.
    signed_in_at: datetime | None
    # The last heartbeat (or the login, before the first); None for a last login.
    last_heartbeat_at: datetime | None


@dataclass(frozen=True)
class SessionsPage:
    """A page of who is signed in: `total` lines in all, this page's from `offset`."""

    sessions: tuple[SignedIn, ...]
    total: int
    offset: int


@dataclass(frozen=True)
class SessionsEnded:
    """A user's live sessions ended by the admin; `ended` 0: the user had none."""

    user_name: str
    ended: int


@dataclass(frozen=True)
class TrustedKey:
    """A vendor public key the server trusts."""

    key_id: str
    # SHA-256 of the raw public key, hex.
    fingerprint: str
    # The file the server read it from.
    source: str
    # Its path inside the server's data directory, which a backup includes; None for a
    # file elsewhere (keep a copy of it yourself).
    data_dir_name: str | None
    license_ids: tuple[str, ...]


@dataclass(frozen=True)
class BackupWritten:
    """A backup: the database copy's size, and the vendor key files written beside it."""

    size: int
    key_files: tuple[Path, ...]


# --- the usage history (officestatus-admin usage) ------------------------------------


@dataclass(frozen=True)
class UsageDay:
    """One UTC day of the usage history."""

    date: date
    peak_enabled_users: int
    peak_live_sessions: int
    # The seats at the day's latest recorded hour; None: no seat limit (the evaluation).
    seats: int | None
    logins_granted: int
    logins_denied: int
    hours_recorded: int


@dataclass(frozen=True)
class UsageHour:
    """One UTC hour of the usage history (`hour`: its start)."""

    hour: datetime
    peak_enabled_users: int
    peak_live_sessions: int
    logins_granted: int
    logins_denied: int


@dataclass(frozen=True)
class UsageDenials:
    """Logins denied for one reason to one client release."""

    reason: str
    client_release: int
    count: int


@dataclass(frozen=True)
class UsageForecast:
    """When the seats run out at the growth of the daily peak of enabled users over the
    last `window_days` days (a least-squares line; needs `min_days` days with data).

    `outlook`: "runs_out" (around `runs_out_on`), "full", "not_growing",
    "no_seat_limit" (the evaluation) or "not_enough_history"."""

    outlook: str
    runs_out_on: date | None
    # Enabled users per day, fitted.
    growth_per_day: float
    days_with_data: int
    window_days: int
    min_days: int
    seats: int | None


@dataclass(frozen=True)
class Usage:
    """The usage history from `first_date` to `last_date` (UTC days, both included)."""

    first_date: date
    last_date: date
    # Days with a recorded hour, in order.
    days: tuple[UsageDay, ...]
    denials: tuple[UsageDenials, ...]
    # The hour with the most live sessions (then logins); None without a recorded hour.
    busiest_hour: UsageHour | None
    forecast: UsageForecast
    # How often the server writes the history down (a crash loses at most this much);
    # 0: the server keeps no history.
    flush_seconds: int
