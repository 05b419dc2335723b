"""The wire-level enums, as Python enums whose values are the generated ones.

Every number comes from the generated code (`officestatus.licensing.seat_service_pb2`), so
neither side writes it again; `tests/test_protocol_package.py` checks that each enum has a
member for every value the .proto file defines.
"""

from __future__ import annotations

from enum import IntEnum

from officestatus.licensing import seat_service_pb2 as _seat


class DenyReason(IntEnum):
    """Why a login or heartbeat is refused (the wire's `DenyReason`, prefix dropped)."""

    UNSPECIFIED = _seat.DENY_REASON_UNSPECIFIED
    USER_UNKNOWN = _seat.DENY_REASON_USER_UNKNOWN
    USER_DISABLED = _seat.DENY_REASON_USER_DISABLED
    NOT_LICENSED = _seat.DENY_REASON_NOT_LICENSED
    EVALUATION_EXPIRED = _seat.DENY_REASON_EVALUATION_EXPIRED
    OVER_CAPACITY = _seat.DENY_REASON_OVER_CAPACITY
    SESSION_ENDED = _seat.DENY_REASON_SESSION_ENDED
