"""How the admin CLI shows replies: aligned tables and sentences for people, JSON for scripts.

Pure functions from the client's dataclasses to text; nothing here calls the server.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path

import wcwidth

from officestatus_client._models import (
    AuditRecord,
    AuditVerification,
    License,
    LoginResult,
    Status,
    TakeoverReport,
    TakeoverSection,
    UpgradePreview,
    User,
)


def jsonable(value: object) -> object:
    """`value` as JSON-ready data: dataclasses as dicts, dates as ISO strings, enums by name."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    # Enum before int: a DenyReason reads better as "OVER_CAPACITY" than as 5.
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def to_json(value: object) -> str:
    """`value` as indented JSON text."""
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


# Every JSON document the admin CLI prints says what it is, as the upgrade request does
# (officestatus.formats): "format" names it, "version" is the revision of its layout, raised
# when a field is renamed or removed (adding one is not a new version).
CLI_FORMAT = "officestatus-admin"
CLI_FORMAT_VERSION = 1


def document(value: object, key: str = "") -> str:
    """A reply as the CLI's JSON document: a dataclass's or a dict's fields at the top level
    beside "format" and "version"; a list under `key`."""
    data = jsonable(value)
    if isinstance(data, list):
        if not key:
            raise ValueError("a list is printed under a key")
        data = {key: data}
    if not isinstance(data, dict):
        raise TypeError(f"a document is an object, not {type(value).__name__}")
    # The format fields first: a reader of the text sees at once what it is.
    return to_json({"format": CLI_FORMAT, "version": CLI_FORMAT_VERSION, **data})


def text_width(text: str) -> int:
    """The columns `text` takes in a terminal: two for a CJK character or most emoji,
    none for a combining mark (a character without a width counts none)."""
    if text.isascii() and text.isprintable():
        return len(text)  # the common case, and a hundred thousand users' list stays quick
    width = wcwidth.wcswidth(text)
    if width >= 0:
        return int(width)
    return sum(max(int(wcwidth.wcwidth(char)), 0) for char in text)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "") -> str:
    """Columns aligned to their widest cell, in terminal columns (wide characters count
    two); the last column is not padded."""
    all_rows = [list(headers), *(list(r) for r in rows)]
    cell_widths = [[text_width(cell) for cell in row[:-1]] for row in all_rows]
    widths = [max(row[i] for row in cell_widths) for i in range(len(headers) - 1)]
    lines = []
    for row, row_widths in zip(all_rows, cell_widths, strict=True):
        cells = [
            cell + " " * (width - cell_width)
            for cell, cell_width, width in zip(row[:-1], row_widths, widths, strict=False)
        ]
        lines.append((indent + "  ".join([*cells, row[-1]])).rstrip())
    return "\n".join(lines)


def when(value: datetime | date | None) -> str:
    """A timestamp in local time to the minute, a date as ISO, nothing as "-"."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        # Naive timestamps are taken as they are; aware ones are shown in local time,
        # which is what the admin at this machine reads their clock in.
        local = value.astimezone() if value.tzinfo is not None else value
        return local.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def licenses_text(licenses: Sequence[License]) -> str:
    """Installed licenses as a table, with why a license does not count."""
    if not licenses:
        return "No licenses are installed."
    rows = [
        (
            lic.license_id,
            lic.kind,
            str(lic.seats),
            str(lic.major_version),
            lic.customer or "-",
            when(lic.purchase_date),
            when(lic.installed_at),
            "yes" if lic.counts else f"no: {lic.not_counting_reason or 'unknown'}",
        )
        for lic in licenses
    ]
    headers = ("LICENSE", "KIND", "SEATS", "MAJOR", "CUSTOMER", "PURCHASED", "INSTALLED", "COUNTS")
    return table(headers, rows)


def users_text(users: Sequence[User]) -> str:
    """Users as a table; enabled users beyond the seats are marked."""
    if not users:
        return "No users."
    rows = [
        (
            u.name,
            ("yes" if u.enabled else "no"),
            when(u.enabled_at),
            when(u.created_at),
            "over capacity: denied at login" if u.over_capacity else "",
        )
        for u in users
    ]
    return table(("USER", "ENABLED", "ENABLED AT", "ADDED AT", "NOTE"), rows)


def audit_text(records: Sequence[AuditRecord]) -> str:
    """Audit records as a table, newest first as the server sends them."""
    if not records:
        return "No admin changes are recorded."
    rows = [(str(r.id), when(r.at), r.action, r.subject, r.result) for r in records]
    return table(("ID", "AT", "ACTION", "SUBJECT", "RESULT"), rows)


def audit_verification_text(report: AuditVerification) -> str:
    """What the audit check found, one line a problem."""
    if report.intact:
        return (
            f"Audit log intact: {_count(report.records_checked, 'record')} checked.\n"
            f"Newest record's hash: {report.head_hash}"
        )
    lines = [f"Audit log TAMPERED: {_count(len(report.problems), 'problem')} found."]
    lines += [f"  {problem}" for problem in report.problems]
    return "\n".join(lines)


def sqlite_problem(path: Path) -> str:
    """What `PRAGMA integrity_check` says is wrong with a database file; "" if nothing."""
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = db.execute("PRAGMA integrity_check").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return str(exc)
    answer = "; ".join(str(row[0]) for row in rows)
    return "" if answer == "ok" else answer


def preview_text(preview: UpgradePreview) -> str:
    """An upgrade preview: the summary, then each license's path."""
    rows = [
        (c.license_id, c.kind, str(c.seats), f"{c.major_version}.x", c.path, c.note)
        for c in preview.licenses
    ]
    lines = [
        f"OfficeStatus {preview.current_major} -> {preview.target_major}",
        f"Seats now: {preview.seats_now}; without upgrades: {preview.seats_without_upgrades}; "
        f"with every possible upgrade: {preview.seats_with_upgrades}; "
        f"{_count(preview.users_enabled, 'user')} enabled.",
        "",
        table(("LICENSE", "KIND", "SEATS", "FOR", "PATH", "WHY"), rows)
        if rows
        else "No licenses are installed.",
        "",
        preview.summary,
    ]
    return "\n".join(lines)


def status_text(status: Status) -> str:
    """The licensing state: summary, seats per license and their sum, use, evaluation."""
    lines = [status.summary, ""]
    if status.clock_warning:
        lines[1:1] = [f"WARNING: {status.clock_warning}", ""]
    if status.alerts:
        lines[1:1] = [*_alert_lines(status), ""]
    if status.counting:
        lines.append("Seats, per license that counts:")
        rows = [(c.license_id, c.kind, str(c.seats)) for c in status.counting]
        rows.append(("total", "", str(status.seats_total)))
        lines.append(table(("LICENSE", "KIND", "SEATS"), rows, indent="  "))
    else:
        lines.append("Seats: no license with seats is installed.")
    if status.unlimited:
        used = f"{status.seats_used} (no seat limit during the evaluation)"
    else:
        used = f"{status.seats_used} of {status.seats_total}"
    lines.append(
        f"In use: {used}; {_count(status.users_enabled, 'user')} enabled, "
        f"{_count(status.active_sessions, 'session')} active"
    )
    if status.over_capacity:
        lines.append("Over capacity, denied at login: " + ", ".join(status.over_capacity))
    lines.append("Evaluation: " + _evaluation_text(status))
    support = when(status.support_until) if status.support_until else "no purchase yet"
    lines.append(f"Support until: {support}")
    if status.not_counting:
        lines.append("Installed, but not counting:")
        reasons = [(n.license_id, n.reason) for n in status.not_counting]
        lines.append(table(("LICENSE", "REASON"), reasons, indent="  "))
    lines.append(
        f"Server {status.server_version} (major version {status.major_version}), "
        f"installation {status.installation_id}"
    )
    if status.takeover is not None:
        lines += ["", *_takeover_lines(status.takeover)]
    return "\n".join(lines)


# The commands that show the takeover's whole report, and mark it seen.
REPORT_COMMAND = "officestatus-admin takeover-report"
SEEN_COMMAND = f"{REPORT_COMMAND} --seen"


def _takeover_lines(section: TakeoverSection) -> list[str]:
    """The status's takeover section: what needs the admin's eye, and how to dismiss it."""
    lines = [
        f"Takeover: {section.summary}",
        f"  The report has {_count(section.report_lines, 'line')} ({REPORT_COMMAND}).",
    ]
    if section.attention:
        lines.append("  To look at (merged or left out):")
        lines += [f"    {line}" for line in section.attention]
        if section.attention_more:
            lines.append(f"    ... and {section.attention_more} more in the report")
    else:
        lines.append("  Nothing was merged or left out.")
    lines.append(f"  When you have read it, run: {SEEN_COMMAND}")
    return lines


def takeover_report_text(report: TakeoverReport) -> str:
    """The whole report of a takeover, one line an item, and whether it was marked seen."""
    lines = [report.summary, "", *report.lines, ""]
    lines.append(f"sha256 {report.sha256} (the takeover's audit record names the same)")
    if report.seen:
        lines.append("The report is marked seen: the status no longer shows it.")
    else:
        lines.append(f"The status shows it until you run: {SEEN_COMMAND}")
    return "\n".join(lines)


def _evaluation_text(status: Status) -> str:
    if status.evaluation:
        return (
            f"running, {status.evaluation_days_left} days left "
            f"(ends {when(status.evaluation_ends_at)})"
        )
    if status.evaluation_expired:
        return f"expired on {when(status.evaluation_ends_at)}"
    if status.evaluation_ends_at is None:
        return "ended by a purchase"
    return f"over since {when(status.evaluation_ends_at)}"


def _alert_lines(status: Status) -> list[str]:
    """The seat and evaluation alerts in force, one line each."""
    return [f"ALERT: {a.message} (since {when(a.since)})" for a in status.alerts]


def _summary(status: Status) -> str:
    """The summary after a change, and the alerts then in force."""
    return "\n".join([status.summary, *_alert_lines(status)])


def users_changed_text(verb: str, users: Sequence[User], status: Status) -> str:
    """A sentence about the users a change touched, then the new summary and alerts."""
    names = ", ".join(u.name for u in users) or "nobody"
    return f"{verb} {_count(len(users), 'user')}: {names}.\n{_summary(status)}"


def license_changed_text(verb: str, lic: License, status: Status) -> str:
    """A sentence about an installed or removed license, then the new summary and alerts."""
    seats = _count(lic.seats, "seat")
    line = (
        f"{verb} license {lic.license_id} ({lic.kind}, {seats}, major version {lic.major_version})."
    )
    if not lic.counts and lic.not_counting_reason and verb == "Installed":
        line += f"\nIts seats do not count here: {lic.not_counting_reason}"
    return f"{line}\n{_summary(status)}"


def login_text(result: LoginResult) -> str:
    """What a client was told at login."""
    if result.granted:
        lines = [f"granted: {result.message}"]
    else:
        lines = [f"refused ({result.reason.name}): {result.message}"]
    if result.session_id:
        lines.append(f"session: heartbeat every {result.heartbeat_interval_seconds} s")
    info = result.license
    if info is not None:
        if info.unlimited:
            state = f"evaluation, {info.evaluation_days_left} days left, no seat limit"
        else:
            state = f"{info.seats_used} of {info.seats_total} seats in use"
        lines.append(f"license: OfficeStatus {info.major_version}, {state}")
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
