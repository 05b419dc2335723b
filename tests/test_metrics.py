"""/metrics on the HTTP listener, as Prometheus scrapes it: a real server in this process
(real gRPC on a free port, a real SQLite file, the HTTP listener on port 0), logins of
every client release granted and refused, admin changes done and refused, then one scrape
over HTTP parsed with prometheus-client's own parser."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from officestatus_client import AdminClient, NotFoundError
from tests.legacy import CLIENT_VERSION, LegacyClient
from tests.metrics_support import metrics_url, scrape
from tests.support import START, RunningServer, Vendor


async def _login(channel: grpc.aio.Channel, release: str, user: str) -> bool:
    client = LegacyClient(release, channel)
    reply = await client.Login(
        user_name=user,
        client_version=CLIENT_VERSION[release],
        **({"machine_name": "PC-1"} if release != "v3" else {}),
    )
    return bool(reply.msg.granted)


async def test_a_scrape_shows_seats_users_sessions_logins_changes_and_durations(
    metered: RunningServer, vendor: Vendor
) -> None:
    async with AdminClient(metered.address, metered.token) as admin:
        big, _ = await admin.install_license(vendor.issue(10))
        await admin.install_license(vendor.issue(1))
        await admin.add_users(["alice", "bob", "carol"])
        await admin.enable_users(["alice", "bob"])
        with pytest.raises(NotFoundError):
            await admin.enable_users(["zed"])
        # 1 seat left for 2 enabled users: bob, enabled second, is over capacity.
        await admin.remove_license(big.license_id, force=True)

    async with grpc.aio.insecure_channel(metered.address) as channel:
        assert await _login(channel, "v3", "alice")
        assert not await _login(channel, "v4", "carol")  # disabled
        assert not await _login(channel, "v4", "bob")  # over capacity (NOT_LICENSED to 4.x)
        assert await _login(channel, "v5", "alice")
        assert await _login(channel, "current", "alice")
        assert not await _login(channel, "current", "bob")
        assert not await _login(channel, "current", "nobody")

    found = await scrape(metrics_url(metered))

    assert found.value("officestatus_seats") == 1
    assert found.value("officestatus_seats_used") == 1
    assert found.value("officestatus_seats_unlimited") == 0
    assert found.value("officestatus_users_enabled") == 2
    assert found.value("officestatus_users_over_capacity") == 1
    assert found.value("officestatus_evaluation_active") == 0
    assert found.value("officestatus_evaluation_days_left") == 0
    assert not found.has("officestatus_evaluation_end_timestamp_seconds")
    # Licenses bought 2026-11-01: support until 2027-11-01; the clock reads 2026-11-02.
    assert found.value("officestatus_support_days_left") == 364
    assert found.value("officestatus_server_info", version="6.0.0") == 1

    assert found.value("officestatus_sessions_live", release="5.x") == 1
    assert found.value("officestatus_sessions_live", release="6.x") == 1

    assert found.types["officestatus_logins_granted"] == "counter"
    assert found.labelled("officestatus_logins_granted_total") == {
        frozenset({("release", "3.x")}): 1,
        frozenset({("release", "4.x")}): 0,
        frozenset({("release", "5.x")}): 1,
        frozenset({("release", "6.x")}): 1,
    }
    denied = {
        (dict(labels)["reason"], dict(labels)["release"]): value
        for labels, value in found.labelled("officestatus_logins_denied_total").items()
        if value
    }
    # The server's reason, whatever the release is shown of it.
    assert denied == {
        ("USER_DISABLED", "4.x"): 1,
        ("OVER_CAPACITY", "4.x"): 1,
        ("OVER_CAPACITY", "6.x"): 1,
        ("USER_UNKNOWN", "6.x"): 1,
    }

    changes = {
        (dict(labels)["kind"], dict(labels)["result"]): value
        for labels, value in found.labelled("officestatus_admin_changes_total").items()
        if value
    }
    assert changes == {
        ("license.install", "done"): 2,
        ("users.add", "done"): 1,
        ("users.enable", "done"): 1,
        ("users.enable", "refused"): 1,
        ("license.remove", "done"): 1,
    }
    # Every kind is there from the start, at 0.
    assert found.value("officestatus_admin_changes_total", kind="users.disable", result="done") == 0

    assert found.types["officestatus_rpc_duration_seconds"] == "histogram"
    login = {"service": "SeatService", "method": "Login"}
    assert found.value("officestatus_rpc_duration_seconds_count", **login) == 7
    assert found.value("officestatus_rpc_duration_seconds_bucket", le="+Inf", **login) == 7
    assert found.value("officestatus_rpc_duration_seconds_sum", **login) > 0
    enable = {"service": "AdminService", "method": "EnableUsers"}
    assert found.value("officestatus_rpc_duration_seconds_count", **enable) == 2
    buckets = sorted(
        (float(dict(labels)["le"]), value)
        for labels, value in found.labelled("officestatus_rpc_duration_seconds_bucket").items()
        if dict(labels)["method"] == "Login"
    )
    counts = [value for _, value in buckets]
    assert counts == sorted(counts)  # cumulative
    assert buckets[0][0] == 0.0001

    # The process's own metrics come along (CPU, memory, open files).
    assert found.value("process_resident_memory_bytes") > 0


async def test_a_new_installation_shows_its_evaluation(metered: RunningServer) -> None:
    found = await scrape(metrics_url(metered))
    assert found.value("officestatus_evaluation_active") == 1
    assert found.value("officestatus_evaluation_days_left") == 30
    assert found.value("officestatus_seats_unlimited") == 1
    ends = START + timedelta(days=30)
    assert found.value("officestatus_evaluation_end_timestamp_seconds") == ends.timestamp()
    assert not found.has("officestatus_support_days_left")
    # No call yet: no durations to show.
    assert not found.has("officestatus_rpc_duration_seconds_count")


async def test_without_http_listen_nothing_listens_and_no_durations_are_counted(
    server: RunningServer,
) -> None:
    assert server.app is not None
    assert server.app.http is None
    assert server.app.times is None
