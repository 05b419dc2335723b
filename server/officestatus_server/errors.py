"""The server's exception tree. Each error says what to do, and carries a reason code.

    LicenseServerError            every refusal the server makes on purpose
    ├── InvalidInput              INVALID_ARGUMENT: the request itself is wrong
    │   └── KeyRejected           a license key that is malformed, forged or not ours
    ├── NotFound                  NOT_FOUND: no such user or license
    ├── AlreadyExists             ALREADY_EXISTS: that user or license is there already
    ├── PreconditionFailed        FAILED_PRECONDITION: not now, or not on this server
    ├── SeatsExhausted            RESOURCE_EXHAUSTED: not enough free seats
    ├── Unauthenticated           UNAUTHENTICATED: no or a wrong admin token
    ├── NotStarted                UNAVAILABLE: the service has not started yet
    └── StorageError              INTERNAL: the database failed; nothing was changed
        └── StorageUnavailable    UNAVAILABLE: the database cannot be reached (for now)

The gRPC layer turns these into status codes in one table (rpc/errors.py); `reason` is
an UPPER_SNAKE code for programs, `message` a sentence for people.
"""

from __future__ import annotations


class LicenseServerError(Exception):
    """A refusal: `reason` is a stable UPPER_SNAKE code, the message says what to do."""

    default_reason = "LICENSE_SERVER_ERROR"

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason


class InvalidInput(LicenseServerError):
    """The request is malformed: a bad user name, an empty list, a bad argument."""

    default_reason = "INVALID_ARGUMENT"


class KeyRejected(InvalidInput):
    """A license key that cannot be installed because of what the key itself is."""

    default_reason = "KEY_MALFORMED"


class NotFound(LicenseServerError):
    """No such user or license."""

    default_reason = "NOT_FOUND"


class AlreadyExists(LicenseServerError):
    """The user or license is there already."""

    default_reason = "ALREADY_EXISTS"


class PreconditionFailed(LicenseServerError):
    """Valid, but not possible in the server's current state or version."""

    default_reason = "FAILED_PRECONDITION"


class SeatsExhausted(LicenseServerError):
    """Not enough free seats for what was asked."""

    default_reason = "SEATS_EXHAUSTED"


class Unauthenticated(LicenseServerError):
    """An admin call without the admin token, or with a wrong one."""

    default_reason = "ADMIN_TOKEN_INVALID"


class NotStarted(LicenseServerError):
    """A call reached the service before its start finished."""

    default_reason = "NOT_STARTED"


class StorageError(LicenseServerError):
    """The database failed; the change was not made."""

    default_reason = "STORAGE_FAILED"


class StorageUnavailable(StorageError):
    """The database server cannot be reached; the change was not made (try again)."""

    default_reason = "DATABASE_UNAVAILABLE"
