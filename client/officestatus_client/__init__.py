"""The OfficeStatus License Server client: typed, async, over gRPC.

    async with AdminClient.local() as admin:
        status = await admin.status()
        print(status.summary)

SeatClient speaks the client protocol (what OfficeStatus asks at login), AdminClient the
admin protocol. Replies are frozen dataclasses; failures raise OfficeStatusError.
"""

from __future__ import annotations

from officestatus.paths import (
    DEFAULT_ADDRESS,
    default_data_dir,
    token_path,
)
from officestatus.wire import DenyReason
from officestatus_client._client import (
    CLIENT_VERSION,
    AdminClient,
    SeatClient,
)
from officestatus_client._errors import (
    AlreadyExistsError,
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    OfficeStatusError,
    PreconditionFailedError,
    SeatsExhaustedError,
    ServerError,
    UnavailableError,
)
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
    SessionsEnded,
    SessionsPage,
    SignedIn,
    Status,
    TakeoverReport,
    TakeoverReportPage,
    TakeoverSection,
    TlsConfig,
    TrustedKey,
    UpgradeCandidate,
    UpgradePreview,
    Usage,
    UsageDay,
    UsageDenials,
    UsageForecast,
    UsageHour,
    User,
)
from officestatus_client._transport import (
    DEFAULT_TIMEOUT,
)

__all__ = [
    "CLIENT_VERSION",
    "DEFAULT_ADDRESS",
    "DEFAULT_TIMEOUT",
    "AdminClient",
    "Alert",
    "AlreadyExistsError",
    "AuditRecord",
    "AuditVerification",
    "AuthenticationError",
    "DenyReason",
    "Handshake",
    "HeartbeatResult",
    "InvalidArgumentError",
    "License",
    "LicenseCount",
    "LicenseInfo",
    "LicenseStatus",
    "LoginResult",
    "NotCounting",
    "NotFoundError",
    "OfficeStatusError",
    "PreconditionFailedError",
    "SeatClient",
    "SeatsExhaustedError",
    "ServerError",
    "SessionsEnded",
    "SessionsPage",
    "SignedIn",
    "Status",
    "TakeoverReport",
    "TakeoverReportPage",
    "TakeoverSection",
    "TlsConfig",
    "TrustedKey",
    "UnavailableError",
    "UpgradeCandidate",
    "UpgradePreview",
    "Usage",
    "UsageDay",
    "UsageDenials",
    "UsageForecast",
    "UsageHour",
    "User",
    "default_data_dir",
    "token_path",
]
