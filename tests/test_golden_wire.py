"""Golden wire samples: the exact request bytes deployed 3.x, 4.x and 5.x clients send.

tests/golden/requests.json holds, for a few calls, the request bytes (hex) each old
release puts on the wire, produced once by serializing with that release's frozen schema
(proto/frozen/vN). The tests check that

- the committed bytes are still what the frozen schema produces (`generate()`): a change
  to a frozen .proto, to protoc or to protobuf's encoder shows up here;
- the bytes decode, tag by tag and without protobuf, to the fields the sample names;
- sent to a live 6.x server as they are (no serializer), they get a reply that the
  release's own schema reads as expected, carrying only the fields that release defines.

Regenerate (only when a sample is added; the bytes of a released client never change):

    /tmp/venv/bin/python -m tests.test_golden_wire --write
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from officestatus_client import AdminClient
from tests.legacy import SHARED_REPLIES, Reply, raw_call, schema, wire_fields
from tests.support import RunningServer

GOLDEN = Path(__file__).resolve().parent / "golden" / "requests.json"
MACHINE = "OFFICE-PC-07"

# name: (release, rpc, the request's fields as the client sets them)
SAMPLES: dict[str, tuple[str, str, dict[str, str]]] = {
    "3.x-login": ("v3", "Login", {"user_name": "alice", "client_version": "3.4.2"}),
    "4.x-login": (
        "v4",
        "Login",
        {"user_name": "alice", "client_version": "4.2.0", "machine_name": MACHINE},
    ),
    "4.x-license-status": ("v4", "GetLicenseStatus", {}),
    "5.x-login": (
        "v5",
        "Login",
        {"user_name": "alice", "client_version": "5.1.3", "machine_name": MACHINE},
    ),
    "5.x-license-status": ("v5", "GetLicenseStatus", {}),
    "5.x-heartbeat": ("v5", "Heartbeat", {"session_id": "s1.test"}),
    "5.x-logout": ("v5", "Logout", {"session_id": "s1.test"}),
}


def generate() -> dict[str, Any]:
    """The golden file's content, serialized with each release's frozen schema."""
    samples = []
    for name, (release, rpc, fields) in SAMPLES.items():
        method = schema(release).rpcs[rpc]
        request = schema(release).message(method.input_type.name, **fields)
        samples.append(
            {
                "name": name,
                "release": release,
                "proto": f"proto/frozen/{release}/officestatus/licensing/seat_service.proto",
                "rpc": f"/officestatus.licensing.SeatService/{rpc}",
                "request_type": method.input_type.full_name,
                "fields": fields,
                "hex": request.SerializeToString(deterministic=True).hex(),
            }
        )
    return {
        "about": (
            "The exact request bytes deployed OfficeStatus clients send, as hex; produced by "
            "tests/test_golden_wire.py generate(). Never edit a sample: released clients do "
            "not change."
        ),
        "samples": samples,
    }


def write() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(generate(), indent=2) + "\n", encoding="utf-8")


def committed() -> dict[str, dict[str, Any]]:
    document = json.loads(GOLDEN.read_text(encoding="utf-8"))
    return {sample["name"]: sample for sample in document["samples"]}


SAMPLE_IDS = [pytest.param(name, id=name) for name in SAMPLES]


# --- the committed bytes --------------------------------------------------------------


def test_golden_file_is_what_the_frozen_schemas_produce() -> None:
    assert json.loads(GOLDEN.read_text(encoding="utf-8")) == generate()


@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_committed_bytes_are_what_the_release_sends(name: str) -> None:
    sample = committed()[name]
    release, rpc, fields = SAMPLES[name]
    s = schema(release)
    request = s.message(s.rpcs[rpc].input_type.name, **fields)

    assert (sample["release"], sample["rpc"], sample["fields"]) == (
        release,
        f"/officestatus.licensing.SeatService/{rpc}",
        fields,
    )
    assert bytes.fromhex(sample["hex"]) == request.SerializeToString()


@pytest.mark.parametrize("name", SAMPLE_IDS)
def test_committed_bytes_decode_by_hand(name: str) -> None:
    """Tag by tag, without protobuf: each set field once, in field-number order, as a
    length-delimited UTF-8 string under the number the release's schema gives it."""
    sample = committed()[name]
    release, rpc, fields = SAMPLES[name]
    request_type = schema(release).rpcs[rpc].input_type
    data = bytes.fromhex(sample["hex"])

    decoded = [
        (request_type.fields_by_number[number].name, wire_type, payload.decode("utf-8"))
        for number, wire_type, payload in wire_fields(data)
    ]

    expected = sorted(
        ((name_, 2, value) for name_, value in fields.items()),
        key=lambda f: request_type.fields_by_name[f[0]].number,
    )
    assert decoded == expected


def test_4x_and_5x_ask_for_the_license_status_with_the_same_bytes() -> None:
    """Why a 4.x client is answered with the 5.x status reply (legacy.SHARED_REPLIES)."""
    samples = committed()
    assert samples["4.x-license-status"]["hex"] == samples["5.x-license-status"]["hex"] == ""
    assert SHARED_REPLIES[("v4", "GetLicenseStatus")] == "v5"


# --- the committed bytes, sent to a live server ---------------------------------------

WELCOME = "Welcome, alice."
SESSION_ENDED = "Your OfficeStatus session has ended. Sign in again."
NONEMPTY = object()  # any non-empty value (a session id)

# name: (the reply as the release reads it, the field numbers on the wire)
EXPECTED: dict[str, tuple[dict[str, object], set[int]]] = {
    "3.x-login": ({"granted": True, "message": WELCOME}, {1, 2}),
    "4.x-login": ({"granted": True, "message": WELCOME, "reason": 0}, {1, 2}),
    "4.x-license-status": (
        {"seats_total": 25, "seats_used": 1, "evaluation": False, "evaluation_days_left": 0},
        # 5: major_version, which 4.x skips (it sends the same bytes as 5.x).
        {1, 2, 5},
    ),
    "5.x-login": (
        {
            "granted": True,
            "message": WELCOME,
            "reason": 0,
            "session_id": NONEMPTY,
            "heartbeat_interval_seconds": 30,
        },
        {1, 2, 4, 5},
    ),
    "5.x-license-status": (
        {
            "seats_total": 25,
            "seats_used": 1,
            "evaluation": False,
            "evaluation_days_left": 0,
            "major_version": 6,
        },
        {1, 2, 5},
    ),
    # "s1.test" is no session this server issued: refused, with the reason 5.x reads as
    # "no reason" (UNSPECIFIED, so not on the wire) and the message to show.
    "5.x-heartbeat": ({"granted": False, "reason": 0, "message": SESSION_ENDED}, {3}),
    "5.x-logout": ({}, set()),
}


def test_every_sample_has_an_expected_reply() -> None:
    assert set(EXPECTED) == set(SAMPLES)


@pytest.fixture
async def channel(server: RunningServer, admin: AdminClient) -> AsyncIterator[grpc.aio.Channel]:
    """A channel to a server with a 25-seat license and alice enabled."""
    await admin.install_license(server.vendor.issue(25))
    await admin.add_users(["alice"], enable=True)
    async with grpc.aio.insecure_channel(server.address) as chan:
        yield chan


@pytest.mark.parametrize("name", SAMPLE_IDS)
async def test_golden_request_on_a_live_server(channel: grpc.aio.Channel, name: str) -> None:
    sample = committed()[name]
    release, rpc, _ = SAMPLES[name]
    values, wire = EXPECTED[name]
    s = schema(release)
    reply_class = s.message_class(s.rpcs[rpc].output_type.name)

    raw = await raw_call(channel, rpc, bytes.fromhex(sample["hex"]))

    reply = Reply(release, rpc, reply_class.FromString(raw), raw)
    reply.check()
    assert reply.fields == wire
    for field, value in values.items():
        actual = getattr(reply.msg, field)
        assert actual if value is NONEMPTY else actual == value, (field, actual)
    # Only what the release defines is on the wire (4.x status: the 5.x reply it shares).
    shared = SHARED_REPLIES.get((release, rpc))
    if shared is None:
        assert reply.unknown == []
        assert reply.fields <= s.field_numbers(reply_class.DESCRIPTOR.name)
    else:
        undefined = wire - s.field_numbers(reply_class.DESCRIPTOR.name)
        assert reply.unknown == [str(n) for n in sorted(undefined)] == ["5"]
        assert reply.fields <= schema(shared).field_numbers(reply_class.DESCRIPTOR.name)
    if "reason" in values:
        assert reply.msg.reason in s.enum_numbers("DenyReason")
    # Byte for byte: what the release's own encoder makes of the expected reply (with
    # the session id the server chose).
    exact = {k: (getattr(reply.msg, k) if v is NONEMPTY else v) for k, v in values.items()}
    assert reply.known_bytes == reply_class(**exact).SerializeToString(deterministic=True)


async def test_golden_5x_login_session_heartbeats_and_logs_out(
    server: RunningServer, channel: grpc.aio.Channel
) -> None:
    """The session the golden 5.x login opens lives, as 5.x keeps it alive and ends it."""
    s = schema("v5")
    login = s.message_class("LoginReply").FromString(
        await raw_call(channel, "Login", bytes.fromhex(committed()["5.x-login"]["hex"]))
    )
    beat = s.message("HeartbeatRequest", session_id=login.session_id).SerializeToString()
    bye = s.message("LogoutRequest", session_id=login.session_id).SerializeToString()

    server.clock.advance(seconds=30)
    alive = await raw_call(channel, "Heartbeat", beat)
    gone = await raw_call(channel, "Logout", bye)
    ended = s.message_class("HeartbeatReply").FromString(await raw_call(channel, "Heartbeat", beat))

    assert alive == s.message("HeartbeatReply", granted=True).SerializeToString() == b"\x08\x01"
    assert gone == b""
    assert (ended.granted, ended.reason, ended.message) == (False, 0, SESSION_ENDED)


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(f"usage: {sys.executable} -m tests.test_golden_wire --write")
    write()
    print(f"wrote {GOLDEN}")
