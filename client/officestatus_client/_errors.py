"""The client's exception tree. Every failed call raises one of these, never a gRPC error.

    OfficeStatusError             every failure the client reports
    ├── InvalidArgumentError      INVALID_ARGUMENT: the request itself is wrong
    ├── NotFoundError             NOT_FOUND: no such user or license
    ├── AlreadyExistsError        ALREADY_EXISTS: that user or license is there already
    ├── PreconditionFailedError   FAILED_PRECONDITION: not now, or not on this server
    ├── SeatsExhaustedError       RESOURCE_EXHAUSTED: not enough free seats
    ├── AuthenticationError       UNAUTHENTICATED, PERMISSION_DENIED: no or a wrong token
    ├── UnavailableError          UNAVAILABLE, DEADLINE_EXCEEDED: the server is not reached
    └── ServerError               anything else: the server failed or answered nonsense

`reason` is the server's UPPER_SNAKE code for programs (from the google.rpc.ErrorInfo
it attaches), "" when it sent none; `code` is the gRPC status code's name; `message` is a
sentence for people. A gRPC error becomes one of these in one place: `error_from_rpc`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Protocol

from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

# The standard trailing-metadata key for a serialized google.rpc.Status ("rich status").
_STATUS_DETAILS_KEY = "grpc-status-details-bin"


class OfficeStatusError(Exception):
    """A failed call: `message` for people, `reason` and `code` for programs."""

    default_code: ClassVar[str] = "UNKNOWN"

    def __init__(self, message: str, reason: str = "", code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.code = code or self.default_code


class InvalidArgumentError(OfficeStatusError):
    """The request is malformed: a bad user name, an empty list, a rejected license key."""

    default_code = "INVALID_ARGUMENT"


class NotFoundError(OfficeStatusError):
    """No such user or license."""

    default_code = "NOT_FOUND"


class AlreadyExistsError(OfficeStatusError):
    """The user or license is there already."""

    default_code = "ALREADY_EXISTS"


class PreconditionFailedError(OfficeStatusError):
    """Valid, but not possible in the server's current state or version."""

    default_code = "FAILED_PRECONDITION"


class SeatsExhaustedError(OfficeStatusError):
    """Not enough free seats for what was asked."""

    default_code = "RESOURCE_EXHAUSTED"


class AuthenticationError(OfficeStatusError):
    """No admin token, or a wrong one."""

    default_code = "UNAUTHENTICATED"


class UnavailableError(OfficeStatusError):
    """The server cannot be reached, or did not answer in time."""

    default_code = "UNAVAILABLE"


class ServerError(OfficeStatusError):
    """The server failed, or answered something this client cannot read."""

    default_code = "INTERNAL"


_BY_CODE: dict[str, type[OfficeStatusError]] = {
    "INVALID_ARGUMENT": InvalidArgumentError,
    "OUT_OF_RANGE": InvalidArgumentError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": AlreadyExistsError,
    "FAILED_PRECONDITION": PreconditionFailedError,
    "RESOURCE_EXHAUSTED": SeatsExhaustedError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": AuthenticationError,
    "UNAVAILABLE": UnavailableError,
    "DEADLINE_EXCEEDED": UnavailableError,
}


class _StatusCode(Protocol):
    """What is read of a `grpc.StatusCode`."""

    @property
    def name(self) -> str: ...


class RpcError(Protocol):
    """What is read of a `grpc.aio.AioRpcError`: a typed view of an untyped library."""

    def code(self) -> _StatusCode: ...

    def details(self) -> str | None: ...

    def trailing_metadata(self) -> Iterable[tuple[str, str | bytes]] | None: ...


def error_from_rpc(err: RpcError, address: str) -> OfficeStatusError:
    """The client error for a failed gRPC call to `address`: the one conversion."""
    code = str(err.code().name)
    cls = _BY_CODE.get(code, ServerError)
    reason, rich_message = _rich_status(err.trailing_metadata())
    message = err.details() or rich_message or code
    # A server that refuses on purpose says why (with a reason); otherwise gRPC's own text
    # ("failed to connect to all addresses; ...") tells an admin nothing to act on.
    if cls is UnavailableError and not reason:
        problem = "did not answer in time" if code == "DEADLINE_EXCEEDED" else "cannot be reached"
        message = (
            f"the license server at {address} {problem}; check that it is running and "
            "that the address is right"
        )
    return cls(message, reason=reason, code=code)


def _rich_status(trailing_metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[str, str]:
    """The ErrorInfo reason and the message of the google.rpc.Status the server attached.

    Reads what grpc_status.rpc_status.from_call reads, but from the error's trailers
    (from_call wants a live call), and without its consistency check: a status whose
    code or message disagrees with the call's still carries a reason worth showing.
    ("", "") when there is none or it cannot be parsed.
    """
    for key, value in trailing_metadata or ():
        if key != _STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = status_pb2.Status.FromString(value)
        except DecodeError:
            return "", ""
        # googleapis-common-protos is untyped to mypy: pin every value read to str.
        message = str(status.message)
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
                return str(info.reason), message
        return "", message
    return "", ""
