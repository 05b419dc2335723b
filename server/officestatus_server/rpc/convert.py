"""Core values to admin-protocol messages."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Generic, TypeVar

from officestatus.admin import admin_service_pb2 as pb
from officestatus_server.core.alerts import Alert
from officestatus_server.core.audit import ChainedRecord
from officestatus_server.core.model import InstalledLicense, User
from officestatus_server.core.names import name_key
from officestatus_server.core.registry import Counted, NotCounted, Registry, not_counting_reason
from officestatus_server.core.status import StatusView
from officestatus_server.core.takeover import TookOver
from officestatus_server.core.upgrade import Preview

Item = TypeVar("Item")
Message = TypeVar("Message")


def _iso(value: date | datetime | None) -> str:
    return value.isoformat() if value is not None else ""


def license_message(lic: InstalledLicense, registry: Registry) -> pb.License:
    """An installed license, with whether it counts here."""
    reason = not_counting_reason(lic, registry.major)
    msg = pb.License(
        license_id=lic.license_id,
        installed_at=_iso(lic.installed_at),
        counts=reason is None,
        not_counting_reason=reason or "",
    )
    key = lic.key
    if key is not None:
        msg.product = key.product
        msg.major_version = key.major_version
        msg.seats = key.seats
        msg.kind = key.kind.value
        msg.customer = key.customer
        msg.purchase_date = _iso(key.purchase_date)
        msg.issue_date = _iso(key.issue_date)
        msg.upgrades_license_id = key.upgrades_license_id or ""
        msg.signing_key_id = key.signing_key_id
        msg.installation_id = key.installation_id or ""
        msg.evaluation_until = _iso(key.evaluation_until)
    msg.key = lic.key_text
    return msg


def user_message(user: User, over_capacity: bool) -> pb.User:
    """A user as the admin sees it."""
    return pb.User(
        name=user.name,
        enabled=user.enabled,
        created_at=_iso(user.created_at),
        enabled_at=_iso(user.enabled_at),
        over_capacity=over_capacity,
    )


def users_message(users: list[User], registry: Registry, now: datetime) -> list[pb.User]:
    """Users, each marked when it is over capacity."""
    over = {name_key(name) for name in registry.over_capacity(now)}
    return [user_message(u, name_key(u.name) in over) for u in users]


class _Converted(Generic[Item, Message]):
    """The messages for one tuple of items, kept while the same tuple comes back: the
    status lists every license, and its lists change only with the licenses."""

    def __init__(self, convert: Callable[[Item], Message]) -> None:
        self._convert = convert
        self._items: tuple[Item, ...] = ()
        self._messages: list[Message] = []

    def __call__(self, items: tuple[Item, ...]) -> list[Message]:
        if items is not self._items:
            self._messages = [self._convert(item) for item in items]
            self._items = items
        return self._messages


_counting = _Converted[Counted, pb.LicenseCount](
    lambda c: pb.LicenseCount(license_id=c.license_id, seats=c.seats, kind=c.kind)
)
_not_counting = _Converted[NotCounted, pb.NotCounting](
    lambda n: pb.NotCounting(license_id=n.license_id, reason=n.reason)
)


def alert_message(alert: Alert) -> pb.Alert:
    """An alert in force."""
    return pb.Alert(
        kind=alert.kind, message=alert.message, since=_iso(alert.since), threshold=alert.threshold
    )


def status_message(
    view: StatusView,
    active_sessions: int,
    took_over: TookOver | None = None,
    alerts: Iterable[Alert] = (),
) -> pb.Status:
    """The explained licensing state, with the alerts in force; with the takeover's
    section while its report is unseen."""
    return pb.Status(
        alerts=[alert_message(alert) for alert in alerts],
        takeover=takeover_section(took_over),
        server_version=view.server_version,
        major_version=view.major_version,
        installation_id=view.installation_id,
        counting=_counting(view.counting),
        seats_total=view.seats_total,
        seats_used=view.seats_used,
        users_enabled=view.users_enabled,
        over_capacity=list(view.over_capacity),
        evaluation=view.evaluation,
        evaluation_days_left=view.evaluation_days_left,
        evaluation_ends_at=_iso(view.evaluation_ends_at),
        evaluation_expired=view.evaluation_expired,
        support_until=_iso(view.support_until),
        not_counting=_not_counting(view.not_counting),
        summary=view.summary,
        unlimited=view.unlimited,
        active_sessions=active_sessions,
        clock_warning=view.clock_warning,
    )


def takeover_section(took_over: TookOver | None) -> pb.TakeoverSection | None:
    """What the status shows of a takeover: nothing once its report is seen."""
    if took_over is None or took_over.seen:
        return None
    attention, more = took_over.needs_attention()
    return pb.TakeoverSection(
        release=took_over.release,
        summary=took_over.summary,
        report_lines=len(took_over.report),
        attention=list(attention),
        attention_more=more,
    )


def takeover_report_message(
    took_over: TookOver | None, offset: int, limit: int
) -> pb.GetTakeoverReportResponse:
    """A page of a takeover's report."""
    if took_over is None:
        return pb.GetTakeoverReportResponse(took_over=False)
    return pb.GetTakeoverReportResponse(
        took_over=True,
        release=took_over.release,
        summary=took_over.summary,
        seen=took_over.seen,
        total=len(took_over.report),
        offset=offset,
        lines=list(took_over.page(offset, limit)),
    )


def audit_message(record: ChainedRecord) -> pb.AuditRecord:
    """One audit record, with its place in the hash chain."""
    entry = record.entry
    return pb.AuditRecord(
        id=record.id,
        at=_iso(entry.at),
        action=entry.action,
        subject=entry.subject,
        result=entry.result,
        hash=record.hash,
        previous_hash=record.previous_hash,
    )


def preview_message(preview: Preview) -> pb.PreviewUpgradeResponse:
    """An upgrade preview."""
    return pb.PreviewUpgradeResponse(
        current_major=preview.current_major,
        target_major=preview.target_major,
        seats_now=preview.seats_now,
        seats_without_upgrades=preview.seats_without_upgrades,
        seats_with_upgrades=preview.seats_with_upgrades,
        users_enabled=preview.users_enabled,
        licenses=[
            pb.UpgradeCandidate(
                license_id=c.license_id,
                kind=c.kind,
                seats=c.seats,
                major_version=c.major,
                counts_after=c.counts_after,
                path=c.path.value,
                note=c.note,
            )
            for c in preview.candidates
        ],
        summary=preview.summary,
    )
