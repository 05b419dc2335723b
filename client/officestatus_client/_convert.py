"""Replies on the wire to the client's dataclasses: the only module that reads protobuf.

A value the client cannot read (a malformed date) raises ServerError rather than
ValueError: it is the server's fault, and callers handle one exception tree.
"""

from __future__ import annotations

from datetime import date, datetime

from officestatus.admin import admin_service_pb2 as admin_pb
from officestatus.licensing import seat_service_pb2 as seat_pb
from officestatus.wire import DenyReason
from officestatus_client._errors import ServerError
from officestatus_client._models import (
    Alert,
    AuditRecord,
    AuditVerification,
    Handshake,
    HeartbeatResult,
    License,
    LicenseCount,
    LicenseInfo,
    LicenseStatus,
    LoginResult,
    NotCounting,
    SessionsPage,
    SignedIn,
    Status,
    TakeoverReportPage,
    TakeoverSection,
    UpgradeCandidate,
    UpgradePreview,
    Usage,
    UsageDay,
    UsageDenials,
    UsageForecast,
    UsageHour,
    User,
)


def _date(text: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ServerError(f"the server sent {text!r} where a date belongs") from None


def _datetime(text: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ServerError(f"the server sent {text!r} where a timestamp belongs") from None


def _optional(text: str) -> str | None:
    return text or None


def deny_reason(value: int) -> DenyReason:
    """A wire DenyReason; a number newer than this client reads as UNSPECIFIED."""
    # The protocol only grows: a newer server may know reasons this client does not,
    # and the reply's message still explains them to the user.
    try:
        return DenyReason(value)
    except ValueError:
        return DenyReason.UNSPECIFIED


# --- client protocol ----------------------------------------------------------------


def handshake(reply: seat_pb.HandshakeReply) -> Handshake:
    """A HandshakeReply as a Handshake."""
    return Handshake(
        server_version=reply.server_version,
        minimum_client_version=reply.minimum_client_version,
        capabilities=tuple(reply.capabilities),
        major_version=reply.major_version,
    )


def login(reply: seat_pb.LoginReply) -> LoginResult:
    """A LoginReply as a LoginResult; `license` is None when the server sent none."""
    info = reply.license
    return LoginResult(
        granted=reply.granted,
        message=reply.message,
        reason=deny_reason(reply.reason),
        session_id=reply.session_id,
        heartbeat_interval_seconds=reply.heartbeat_interval_seconds,
        license=(
            LicenseInfo(
                seats_total=info.seats_total,
                seats_used=info.seats_used,
                evaluation=info.evaluation,
                evaluation_days_left=info.evaluation_days_left,
                major_version=info.major_version,
                unlimited=info.unlimited,
            )
            if reply.HasField("license")
            else None
        ),
    )


def license_status(reply: seat_pb.LicenseStatusReply) -> LicenseStatus:
    """A LicenseStatusReply as a LicenseStatus."""
    return LicenseStatus(
        seats_total=reply.seats_total,
        seats_used=reply.seats_used,
        evaluation=reply.evaluation,
        evaluation_days_left=reply.evaluation_days_left,
        major_version=reply.major_version,
        unlimited=reply.unlimited,
    )


def heartbeat(reply: seat_pb.HeartbeatReply) -> HeartbeatResult:
    """A HeartbeatReply as a HeartbeatResult."""
    return HeartbeatResult(
        granted=reply.granted, reason=deny_reason(reply.reason), message=reply.message
    )


# --- admin protocol -----------------------------------------------------------------


def license_(msg: admin_pb.License) -> License:
    """A wire License as a License."""
    return License(
        license_id=msg.license_id,
        product=msg.product,
        major_version=msg.major_version,
        seats=msg.seats,
        kind=msg.kind,
        customer=msg.customer,
        purchase_date=_date(msg.purchase_date),
        issue_date=_date(msg.issue_date),
        upgrades_license_id=_optional(msg.upgrades_license_id),
        signing_key_id=msg.signing_key_id,
        installed_at=_datetime(msg.installed_at),
        counts=msg.counts,
        not_counting_reason=_optional(msg.not_counting_reason),
        installation_id=_optional(msg.installation_id),
        evaluation_until=_date(msg.evaluation_until),
        key=msg.key,
    )


def upgrade_preview(msg: admin_pb.PreviewUpgradeResponse) -> UpgradePreview:
    """A wire PreviewUpgradeResponse as an UpgradePreview."""
    return UpgradePreview(
        current_major=msg.current_major,
        target_major=msg.target_major,
        seats_now=msg.seats_now,
        seats_without_upgrades=msg.seats_without_upgrades,
        seats_with_upgrades=msg.seats_with_upgrades,
        users_enabled=msg.users_enabled,
        licenses=tuple(
            UpgradeCandidate(
                license_id=c.license_id,
                kind=c.kind,
                seats=c.seats,
                major_version=c.major_version,
                counts_after=c.counts_after,
                path=c.path,
                note=c.note,
            )
            for c in msg.licenses
        ),
        summary=msg.summary,
    )


def user(msg: admin_pb.User) -> User:
    """A wire User as a User."""
    return User(
        name=msg.name,
        enabled=msg.enabled,
        created_at=_datetime(msg.created_at),
        enabled_at=_datetime(msg.enabled_at),
        over_capacity=msg.over_capacity,
    )


def status(msg: admin_pb.Status) -> Status:
    """A wire Status as a Status."""
    return Status(
        server_version=msg.server_version,
        major_version=msg.major_version,
        installation_id=msg.installation_id,
        counting=tuple(
            LicenseCount(license_id=c.license_id, seats=c.seats, kind=c.kind) for c in msg.counting
        ),
        seats_total=msg.seats_total,
        seats_used=msg.seats_used,
        users_enabled=msg.users_enabled,
        over_capacity=tuple(msg.over_capacity),
        evaluation=msg.evaluation,
        evaluation_days_left=msg.evaluation_days_left,
        evaluation_ends_at=_datetime(msg.evaluation_ends_at),
        evaluation_expired=msg.evaluation_expired,
        support_until=_date(msg.support_until),
        not_counting=tuple(
            NotCounting(license_id=n.license_id, reason=n.reason) for n in msg.not_counting
        ),
        summary=msg.summary,
        unlimited=msg.unlimited,
        active_sessions=msg.active_sessions,
        clock_warning=msg.clock_warning,
        takeover=takeover_section(msg.takeover) if msg.HasField("takeover") else None,
        alerts=tuple(
            Alert(kind=a.kind, message=a.message, since=_datetime(a.since), threshold=a.threshold)
            for a in msg.alerts
        ),
    )


def takeover_section(msg: admin_pb.TakeoverSection) -> TakeoverSection:
    """A wire TakeoverSection as a TakeoverSection."""
    return TakeoverSection(
        release=msg.release,
        summary=msg.summary,
        report_lines=msg.report_lines,
        attention=tuple(msg.attention),
        attention_more=msg.attention_more,
    )


def takeover_report_page(msg: admin_pb.GetTakeoverReportResponse) -> TakeoverReportPage:
    """A wire GetTakeoverReportResponse as a TakeoverReportPage."""
    return TakeoverReportPage(
        took_over=msg.took_over,
        release=msg.release,
        summary=msg.summary,
        seen=msg.seen,
        total=msg.total,
        offset=msg.offset,
        lines=tuple(msg.lines),
    )


def audit_record(msg: admin_pb.AuditRecord) -> AuditRecord:
    """A wire AuditRecord as an AuditRecord."""
    return AuditRecord(
        id=msg.id,
        at=_datetime(msg.at),
        action=msg.action,
        subject=msg.subject,
        result=msg.result,
        hash=msg.hash,
        previous_hash=msg.previous_hash,
    )


def audit_verification(msg: admin_pb.VerifyAuditResponse) -> AuditVerification:
    """A wire VerifyAuditResponse as an AuditVerification."""
    return AuditVerification(
        intact=msg.intact,
        records_checked=msg.records_checked,
        problems=tuple(msg.problems),
        head_hash=msg.head_hash,
    )


def signed_in(msg: admin_pb.SignedIn) -> SignedIn:
    """A wire SignedIn as a SignedIn."""
    return SignedIn(
        user_name=msg.user_name,
        machine_name=_optional(msg.machine_name),
        client_version=_optional(msg.client_version),
        client_release=msg.client_release,
        session=msg.session,
        signed_in_at=_datetime(msg.signed_in_at),
        last_heartbeat_at=_datetime(msg.last_heartbeat_at),
    )


def sessions_page(msg: admin_pb.ListSessionsResponse) -> SessionsPage:
    """A wire ListSessionsResponse as a SessionsPage."""
    return SessionsPage(
        sessions=tuple(signed_in(s) for s in msg.sessions), total=msg.total, offset=msg.offset
    )


def _required_date(text: str) -> date:
    value = _date(text)
    if value is None:
        raise ServerError("the server sent no date where one belongs")
    return value


def usage(msg: admin_pb.GetUsageResponse) -> Usage:
    """A wire GetUsageResponse as Usage."""
    busiest = None
    if msg.HasField("busiest_hour"):
        hour = msg.busiest_hour
        start = _datetime(hour.hour)
        if start is None:
            raise ServerError("the server sent no timestamp for the busiest hour")
        busiest = UsageHour(
            start,
            hour.peak_enabled_users,
            hour.peak_live_sessions,
            hour.logins_granted,
            hour.logins_denied,
        )
    f = msg.forecast
    return Usage(
        first_date=_required_date(msg.first_date),
        last_date=_required_date(msg.last_date),
        days=tuple(
            UsageDay(
                _required_date(d.date),
                d.peak_enabled_users,
                d.peak_live_sessions,
                None if d.unlimited else d.seats,
                d.logins_granted,
                d.logins_denied,
                d.hours_recorded,
            )
            for d in msg.days
        ),
        denials=tuple(UsageDenials(d.reason, d.client_release, d.count) for d in msg.denials),
        busiest_hour=busiest,
        forecast=UsageForecast(
            outlook=f.outlook,
            runs_out_on=_date(f.runs_out_on),
            growth_per_day=f.growth_per_day,
            days_with_data=f.days_with_data,
            window_days=f.window_days,
            min_days=f.min_days,
            seats=f.seats if f.outlook not in ("no_seat_limit", "not_enough_history") else None,
        ),
        flush_seconds=msg.flush_seconds,
    )
