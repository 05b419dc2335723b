"""The protocol package: its enums are the generated ones, value for value."""

from __future__ import annotations

from officestatus.licensing import seat_service_pb2
from officestatus.wire import DenyReason


def test_deny_reason_has_a_member_for_every_value_the_proto_defines() -> None:
    generated = {
        name.removeprefix("DENY_REASON_"): number
        for name, number in seat_service_pb2.DenyReason.items()
    }
    assert {m.name: m.value for m in DenyReason} == generated


def test_a_deny_reason_reads_as_its_wire_name() -> None:
    wire = seat_service_pb2.DenyReason.ValueType(DenyReason.OVER_CAPACITY)
    assert seat_service_pb2.DenyReason.Name(wire) == ("DENY_REASON_OVER_CAPACITY")
