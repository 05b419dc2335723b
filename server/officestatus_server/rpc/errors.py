"""Domain errors to gRPC status codes: the one table, and the one place they convert.

Each refusal goes out as a canonical status code, the message as the status details,
and a google.rpc.Status with an ErrorInfo (UPPER_SNAKE reason) in the standard
`grpc-status-details-bin` trailer, via grpcio-status.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from officestatus_server.errors import (
    AlreadyExists,
    InvalidInput,
    LicenseServerError,
    NotFound,
    NotStarted,
    PreconditionFailed,
    SeatsExhausted,
    StorageError,
    StorageUnavailable,
    Unauthenticated,
)

ERROR_DOMAIN = "officestatus.licensing"
# The message travels twice in the trailers, which gRPC caps at 16 KiB in all: a refusal
# longer than this would arrive as a transport error instead of itself.
MAX_MESSAGE_CHARS = 1000

STATUS_CODES: dict[type[LicenseServerError], int] = {
    InvalidInput: code_pb2.INVALID_ARGUMENT,
    NotFound: code_pb2.NOT_FOUND,
    AlreadyExists: code_pb2.ALREADY_EXISTS,
    PreconditionFailed: code_pb2.FAILED_PRECONDITION,
    SeatsExhausted: code_pb2.RESOURCE_EXHAUSTED,
    Unauthenticated: code_pb2.UNAUTHENTICATED,
    NotStarted: code_pb2.UNAVAILABLE,
    StorageError: code_pb2.INTERNAL,
    StorageUnavailable: code_pb2.UNAVAILABLE,
}


def code_for(exc: LicenseServerError) -> int:
    """The google.rpc code for an error: its nearest class in the table."""
    for cls in type(exc).__mro__:
        if cls in STATUS_CODES:
            return int(STATUS_CODES[cls])
    return int(code_pb2.INTERNAL)


def to_status(exc: LicenseServerError) -> grpc.Status:
    """The gRPC status for a domain error, with its ErrorInfo."""
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN))
    message = exc.message
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    status: grpc.Status = rpc_status.to_status(
        status_pb2.Status(code=code_for(exc), message=message, details=[info])
    )
    return status


# The servicer context, untyped in its messages: the handlers' own signatures say them.
Context = grpc.aio.ServicerContext[Any, Any]
