"""What a 3.x, 4.x or 5.x installation becomes on 6.x: the rules of the takeover.

Each item the old server kept is taken over, merged or left out, and the report says
which and why (`Item`). The rules, by item:

- installation id: kept, so the vendor's records and extension keys still match;
- listen address: where the old server listened (3.x all interfaces at its port; 4.x and
  5.x its `listen_host` too);
- heartbeat interval (5.x): kept;
- users: every row, in the old release's seat order (3.x rowid order; 4.x/5.x
  `enabled_at`, NULL first in rowid order); rows that are one account by 6.x's name rules
  become one user, enabled if any row was, at the earliest seat position among them,
  named as its first row; a name 6.x refuses is left out with the reason;
- licenses: every key verified against the trusted vendor keys, carried as a license of
  its own major (which does not count on 6.x); one that does not verify is left out, and
  a duplicate (same license id) is carried once;
- evaluation extensions (4.x/5.x): history only;
- sessions (5.x): those seen within their last three heartbeat intervals are carried;
- audit (4.x/5.x): every record, in order, marked as the old release's, then one record
  of the takeover: its summary, the report's lines that need a look (at most
  `STATUS_SHOWS` of them, with how many more), and the whole report's SHA-256, so the
  report `takeover-report` prints can be checked against the audit chain.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from officestatus_server.core.keys import LicenseKey
from officestatus_server.core.legacy import LegacyServer, LegacyUser
from officestatus_server.core.model import (
    AuditEntry,
    Change,
    Installation,
    InstalledLicense,
    User,
)
from officestatus_server.core.names import clean_name, name_key
from officestatus_server.core.texts import count, short
from officestatus_server.errors import InvalidInput, KeyRejected

MISSED_HEARTBEATS = 3
# The lines of the report the status shows while unseen, at most.
STATUS_SHOWS = 50
TAKEN = "taken over"
MERGED = "merged"
LEFT_OUT = "left out"


@dataclass(frozen=True)
class Item:
    """One line of the takeover's report."""

    kind: str  # installation, address, heartbeat, user, license, extension, session, audit
    subject: str
    outcome: str  # TAKEN, MERGED or LEFT_OUT
    detail: str = ""

    def line(self) -> str:
        """The item as a line of text."""
        text = f"{self.kind} {self.subject}: {self.outcome}"
        return f"{text} ({self.detail})" if self.detail else text


@dataclass(frozen=True)
class CarriedSession:
    """A 5.x session that goes on: its id as the 5.x server gave it to the client."""

    session_id: str
    user_key: str
    release: int


@dataclass(frozen=True)
class Takeover:
    """The 6.x installation made of an older one, and the report of how."""

    release: int
    source: str
    installation: Installation
    listen: str
    heartbeat_seconds: int | None
    users: tuple[User, ...]
    licenses: tuple[InstalledLicense, ...]
    sessions: tuple[CarriedSession, ...]
    audit: tuple[AuditEntry, ...]
    items: tuple[Item, ...]

    @property
    def summary(self) -> str:
        """One line: what was taken over."""
        enabled = sum(1 for u in self.users if u.enabled)
        left_out = sum(1 for i in self.items if i.outcome == LEFT_OUT)
        merged = sum(1 for i in self.items if i.outcome == MERGED)
        text = (
            f"took over the {self.release}.x installation {self.installation.installation_id} "
            f"from {self.source}: {count(len(self.users), 'user')} ({enabled} enabled), "
            f"{count(len(self.licenses), 'license')}, {count(len(self.sessions), 'session')}"
        )
        if merged:
            text += f", {count(merged, 'name')} merged"
        if left_out:
            text += f", {count(left_out, 'item')} left out (see the report)"
        return text


@dataclass(frozen=True)
class TookOver:
    """What a takeover leaves for every later start: the old server's address and
    heartbeat (used unless configured otherwise), and its report until the admin saw it."""

    release: int
    summary: str
    listen: str
    heartbeat_seconds: int | None
    report: tuple[str, ...]
    seen: bool = False
    # The report's lines that need the admin's eye (merged, left out), by position.
    attention: tuple[int, ...] = ()

    @classmethod
    def of(cls, takeover: Takeover) -> TookOver:
        """The record of a takeover."""
        return cls(
            takeover.release,
            takeover.summary,
            takeover.listen,
            takeover.heartbeat_seconds,
            tuple(item.line() for item in takeover.items),
            attention=tuple(i for i, item in enumerate(takeover.items) if item.outcome != TAKEN),
        )

    def needs_attention(self, limit: int = STATUS_SHOWS) -> tuple[tuple[str, ...], int]:
        """Up to `limit` of the lines that need the admin's eye, and how many more."""
        shown = tuple(self.report[i] for i in self.attention[:limit])
        return shown, len(self.attention) - len(shown)

    def audit_text(self) -> str:
        """What the takeover's audit record says: the summary, the lines that need a look
        (bounded), and the SHA-256 of the whole report (its lines, each ending in a
        newline, UTF-8)."""
        shown, more = self.needs_attention()
        text = self.summary
        if shown:
            text += "; needs a look: " + "; ".join(shown)
            if more:
                text += f"; and {more} more"
        return f"{text}; the report: {count(len(self.report), 'line')}, sha256 {self.digest()}"

    def digest(self) -> str:
        """The SHA-256 of the whole report, hex: its lines, each ending in a newline."""
        return hashlib.sha256("".join(f"{line}\n" for line in self.report).encode()).hexdigest()

    def page(self, offset: int, limit: int) -> tuple[str, ...]:
        """The report's lines from `offset`, at most `limit` of them."""
        return self.report[offset : offset + limit]


def plan_report_seen(took_over: TookOver | None, now: datetime) -> Change:
    """The admin has seen the takeover's report: recorded once, audited; a repeat, or an
    installation no takeover made, changes nothing."""
    if took_over is None or took_over.seen:
        return Change(audit=None)
    lines = count(len(took_over.report), "line")
    subject = f"the report of the {took_over.release}.x takeover"
    entry = AuditEntry(now, "takeover.report-seen", subject, f"marked seen ({lines})")
    return Change(audit=entry, takeover_report_seen=True)


# Reads a key's text: the verified key, or KeyRejected.
KeyReader = Callable[[str], LicenseKey]


def seat_order(release: int, users: tuple[LegacyUser, ...]) -> list[LegacyUser]:
    """The enabled rows in the order the old release gave them seats."""
    enabled = [u for u in users if u.enabled]
    if release == 3:
        return enabled
    unordered = [u for u in enabled if u.enabled_at is None]
    ordered = sorted(
        (u for u in enabled if u.enabled_at is not None),
        key=lambda u: (u.enabled_at, u.rowid),
    )
    return unordered + ordered


def _users(old: LegacyServer, items: list[Item]) -> tuple[list[User], dict[str, str]]:
    """The 6.x users, and for each old row's name the key of the user it became."""
    groups: dict[str, list[LegacyUser]] = {}
    cleaned: dict[int, str] = {}
    for row in old.users:
        try:
            name = clean_name(row.name)
        except InvalidInput as exc:
            items.append(Item("user", repr(row.name), LEFT_OUT, exc.message))
            continue
        cleaned[row.rowid] = name
        groups.setdefault(name_key(name), []).append(row)
    position = {row.rowid: i for i, row in enumerate(seat_order(old.release, old.users))}
    made: list[tuple[int | None, int, User]] = []
    key_of: dict[str, str] = {}
    for key, rows in groups.items():
        first = rows[0]
        enabled_rows = [r for r in rows if r.enabled]
        seat = min((position[r.rowid] for r in enabled_rows), default=None)
        enabled_at = min(
            (r.enabled_at for r in enabled_rows if r.enabled_at is not None), default=None
        )
        user = User(
            name=cleaned[first.rowid],
            enabled=bool(enabled_rows),
            created_at=first.added_at,
            enabled_at=enabled_at if enabled_rows else None,
        )
        made.append((seat, first.rowid, user))
        for row in rows:
            key_of[row.name] = key
        if len(rows) > 1:
            others = ", ".join(repr(r.name) for r in rows[1:])
            items.append(
                Item(
                    "user",
                    repr(user.name),
                    MERGED,
                    f"{others} {'is' if len(rows) == 2 else 'are'} the same account on 6.x; "
                    f"{'enabled' if user.enabled else 'disabled'}",
                )
            )
        else:
            items.append(
                Item("user", repr(user.name), TAKEN, "enabled" if user.enabled else "disabled")
            )
    # Seats in the old order, then the disabled users; enable_seq numbers the enabled.
    made.sort(key=lambda m: (m[0] is None, m[0] if m[0] is not None else 0, m[1]))
    users: list[User] = []
    for seq, (seat, _, user) in enumerate(made, start=1):
        users.append(user._replace(enable_seq=seq) if seat is not None else user)
    return users, key_of


def _licenses(
    old: LegacyServer, read: KeyReader, now: datetime, items: list[Item]
) -> list[InstalledLicense]:
    carried: dict[str, InstalledLicense] = {}
    for text in old.license_keys:
        try:
            key = read(text)
        except KeyRejected as exc:
            items.append(Item("license", short(text, 20), LEFT_OUT, exc.message))
            continue
        if key.license_id in carried:
            items.append(
                Item("license", key.license_id, MERGED, "a duplicate key of the same license")
            )
            continue
        carried[key.license_id] = InstalledLicense(key.license_id, text, now, key)
        counts = "" if key.major_version == 6 else "; does not count on 6.x"
        items.append(
            Item(
                "license",
                key.license_id,
                TAKEN,
                f"{key.major_version}.x, {count(key.seats, 'seat')}, {key.kind.value}{counts}",
            )
        )
    for text in old.extension_keys:
        items.append(
            Item("extension", short(text, 20), LEFT_OUT, "evaluation extensions are history only")
        )
    return list(carried.values())


def _sessions(
    old: LegacyServer,
    key_of: dict[str, str],
    users: dict[str, User],
    now: datetime,
    items: list[Item],
) -> list[CarriedSession]:
    interval = timedelta(seconds=old.heartbeat_seconds or 60)
    carried: list[CarriedSession] = []
    for s in old.sessions:
        key = key_of.get(s.user_name)
        if now - s.last_seen_at > MISSED_HEARTBEATS * interval:
            items.append(
                Item("session", s.session_id[:8], LEFT_OUT, "not seen for three heartbeats")
            )
        elif key is None or key not in users:
            items.append(Item("session", s.session_id[:8], LEFT_OUT, "its user was left out"))
        else:
            carried.append(CarriedSession(s.session_id, key, 5))
    if carried:
        items.append(Item("session", f"{len(carried)} live", TAKEN, "they keep heartbeating"))
    return carried


def plan_takeover(old: LegacyServer, read: KeyReader, source: str, now: datetime) -> Takeover:
    """The 6.x installation an older one becomes, at `now` (the evaluation begins then)."""
    items: list[Item] = [
        Item("installation", old.installation_id, TAKEN, "the id is kept"),
        Item("address", old.listen, TAKEN, "the 6.x server listens where the old one did"),
    ]
    if old.heartbeat_seconds is not None:
        items.append(Item("heartbeat", f"{old.heartbeat_seconds} s", TAKEN))
    users, key_of = _users(old, items)
    licenses = _licenses(old, read, now, items)
    by_key = {name_key(u.name): u for u in users}
    sessions = _sessions(old, key_of, by_key, now, items)
    audit = [
        AuditEntry(
            a.at,
            f"{old.release}.x {a.action}",
            a.detail,
            f"by {a.actor}, on the {old.release}.x server",
        )
        for a in old.audit
    ]
    if old.audit:
        items.append(Item("audit", count(len(old.audit), "record"), TAKEN, "in their order"))
    plan = Takeover(
        release=old.release,
        source=source,
        installation=Installation(old.installation_id, now),
        listen=old.listen,
        heartbeat_seconds=old.heartbeat_seconds,
        users=tuple(users),
        licenses=tuple(licenses),
        sessions=tuple(sessions),
        audit=tuple(audit),
        items=tuple(items),
    )
    record = AuditEntry(
        now, "takeover", f"{old.release}.x {old.installation_id}", TookOver.of(plan).audit_text()
    )
    return replace(plan, audit=(*plan.audit, record))
