"""The OfficeStatus License Server client: typed, async, over gRPC.

    async with AdminClient.local() as admin:
        status = await admin.status()
        print(status.summary)

SeatClient speaks the client protocol (what OfficeStatus asks at login), AdminClient the
admin protocol. Replies are frozen dataclasses; failures raise OfficeStatusError.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Each name, and the module that defines it. Loaded on first use: the server imports
# `officestatus_client._paths` (the data directory both sides agree on) and should not
# pay for the client's gRPC stubs and models at start-up.
_EXPORTS = {
    "AdminClient": "_client",
    "CLIENT_VERSION": "_client",
    "SeatClient": "_client",
    "AlreadyExistsError": "_errors",
    "AuthenticationError": "_errors",
    "InvalidArgumentError": "_errors",
    "NotFoundError": "_errors",
    "OfficeStatusError": "_errors",
    "PreconditionFailedError": "_errors",
    "SeatsExhaustedError": "_errors",
    "ServerError": "_errors",
    "UnavailableError": "_errors",
    "AuditRecord": "_models",
    "AuditVerification": "_models",
    "DenyReason": "_models",
    "Handshake": "_models",
    "HeartbeatResult": "_models",
    "License": "_models",
    "LicenseCount": "_models",
    "LicenseInfo": "_models",
    "LicenseStatus": "_models",
    "LoginResult": "_models",
    "NotCounting": "_models",
    "Status": "_models",
    "TlsConfig": "_models",
    "UpgradeCandidate": "_models",
    "UpgradePreview": "_models",
    "User": "_models",
    "DEFAULT_ADDRESS": "_paths",
    "default_data_dir": "_paths",
    "token_path": "_paths",
    "DEFAULT_TIMEOUT": "_transport",
}

if TYPE_CHECKING:
    from officestatus_client._client import CLIENT_VERSION, AdminClient, SeatClient
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
        AuditRecord,
        AuditVerification,
        DenyReason,
        Handshake,
        HeartbeatResult,
        License,
        LicenseCount,
        LicenseInfo,
        LicenseStatus,
        LoginResult,
        NotCounting,
        Status,
        TlsConfig,
        UpgradeCandidate,
        UpgradePreview,
        User,
    )
    from officestatus_client._paths import DEFAULT_ADDRESS, default_data_dir, token_path
    from officestatus_client._transport import DEFAULT_TIMEOUT


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all

    def __getattr__(name: str) -> Any:
        module = _EXPORTS.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(__all__)


__all__ = [
    "CLIENT_VERSION",
    "DEFAULT_ADDRESS",
    "DEFAULT_TIMEOUT",
    "AdminClient",
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
    "Status",
    "TlsConfig",
    "UnavailableError",
    "UpgradeCandidate",
    "UpgradePreview",
    "User",
    "default_data_dir",
    "token_path",
]
