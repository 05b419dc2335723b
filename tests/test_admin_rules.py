"""The licensing rules as an admin meets them: a real server, real keys, real SQLite."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import date

import grpc
import pytest

from officestatus.admin import admin_service_pb2, admin_service_pb2_grpc
from officestatus_client import (
    AdminClient,
    AlreadyExistsError,
    AuthenticationError,
    DenyReason,
    InvalidArgumentError,
    NotFoundError,
    OfficeStatusError,
    PreconditionFailedError,
    SeatClient,
    SeatsExhaustedError,
)
from officestatus_server.core.keys import LicenseKind, SigningKey, armour, sign_key
from tests.support import RunningServer, Vendor


async def test_licenses_add_up_25_plus_10_is_35(admin: AdminClient, vendor: Vendor) -> None:
    _, first = await admin.install_license(vendor.issue(25, license_id="L-A"))
    assert first.seats_total == 25
    _, status = await admin.install_license(vendor.issue(10, license_id="L-B"))
    assert status.seats_total == 35
    assert [(c.license_id, c.seats) for c in status.counting] == [("L-A", 25), ("L-B", 10)]
    assert status.summary.startswith("0 of 35 seats in use")
    assert not status.evaluation
    assert status.support_until == date(2027, 11, 1)


@pytest.mark.parametrize(
    ("major", "reason", "says"),
    [
        (5, "LICENSE_OLDER_MAJOR", "licenses for OfficeStatus 5 do not work with OfficeStatus 6"),
        (7, "LICENSE_NEWER_MAJOR", "upgrade this server to OfficeStatus 7 first"),
    ],
)
async def test_a_license_for_another_major_is_refused_and_not_counted(
    admin: AdminClient, vendor: Vendor, major: int, reason: str, says: str
) -> None:
    await admin.install_license(vendor.issue(25))
    with pytest.raises(PreconditionFailedError) as refused:
        await admin.install_license(vendor.issue(10, major=major))
    assert refused.value.reason == reason
    assert says in refused.value.message
    status = await admin.status()
    assert status.seats_total == 25
    assert len(await admin.list_licenses()) == 1


async def test_the_same_license_twice_is_refused_and_seats_unchanged(
    admin: AdminClient, vendor: Vendor
) -> None:
    key = vendor.issue(25, license_id="L-ONCE")
    await admin.install_license(key)
    with pytest.raises(AlreadyExistsError) as refused:
        await admin.install_license(key)
    assert refused.value.reason == "LICENSE_ALREADY_INSTALLED"
    # A re-issued key for the same license (new text, same id) does not count twice either.
    with pytest.raises(AlreadyExistsError):
        await admin.install_license(
            vendor.issue(25, license_id="L-ONCE", purchased=date(2026, 1, 1))
        )
    assert (await admin.status()).seats_total == 25


async def test_every_single_flipped_byte_in_a_key_is_refused(
    admin: AdminClient, vendor: Vendor
) -> None:
    text = sign_key(vendor.key(25), vendor.signing.private_key)
    raw = text.encode("ascii")
    reasons: set[str] = set()
    for i in range(len(raw)):
        mutated = bytearray(raw)
        mutated[i] ^= 0x01
        with pytest.raises(InvalidArgumentError) as refused:
            await admin.install_license(mutated.decode("ascii"))
        reasons.add(refused.value.reason)
    assert reasons <= {"KEY_MALFORMED", "KEY_BAD_SIGNATURE", "KEY_UNKNOWN_SIGNER"}
    assert "KEY_BAD_SIGNATURE" in reasons
    status = await admin.status()
    assert status.seats_total == 0
    assert status.evaluation
    assert await admin.list_licenses() == []
    # The untouched key still installs.
    await admin.install_license(text)


async def test_each_kind_of_bad_key_has_its_own_reason(admin: AdminClient, vendor: Vendor) -> None:
    stranger = Vendor(SigningKey.generate("kms-other"))
    impostor = SigningKey(vendor.signing.key_id, SigningKey.generate("x").private_key)
    other_product = vendor.key(5)
    object.__setattr__(other_product, "product", "officecalendar")
    cases = {
        "KEY_UNKNOWN_SIGNER": stranger.issue(25),
        "KEY_BAD_SIGNATURE": armour(sign_key(vendor.key(25), impostor.private_key)),
        "KEY_WRONG_PRODUCT": sign_key(other_product, vendor.signing.private_key),
        "KEY_MALFORMED": "hello, this is my license",
    }
    for reason, key in cases.items():
        with pytest.raises(InvalidArgumentError) as refused:
            await admin.install_license(key)
        assert refused.value.reason == reason, refused.value.message
    assert (await admin.status()).seats_total == 0


async def test_the_36th_enable_is_refused_then_disable_one_and_enable_another(
    admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(25))
    await admin.install_license(vendor.issue(10))
    names = [f"user{i:02d}" for i in range(37)]
    await admin.add_users(names)
    _, status = await admin.enable_users(names[:35])
    assert (status.seats_used, status.seats_total) == (35, 35)
    with pytest.raises(SeatsExhaustedError) as refused:
        await admin.enable_users([names[35]])
    assert refused.value.code == "RESOURCE_EXHAUSTED"
    assert refused.value.reason == "SEATS_EXHAUSTED"
    assert refused.value.message == ("35 of 35 seats in use: install a license or disable a user.")
    await admin.disable_users([names[0]])
    users, status = await admin.enable_users([names[35]])
    assert users[0].enabled
    assert status.seats_used == 35
    # Enabling several is all or none.
    await admin.disable_users([names[1]])
    with pytest.raises(SeatsExhaustedError):
        await admin.enable_users([names[0], names[36]])
    enabled = {u.name for u in await admin.list_users() if u.enabled}
    assert names[0] not in enabled
    assert names[36] not in enabled


async def test_evaluation_day_29_lets_users_in_and_day_31_does_not(
    server: RunningServer, admin: AdminClient
) -> None:
    await admin.add_users([f"u{i}" for i in range(50)], enable=True)  # no seat limit
    server.clock.advance(days=29)
    async with SeatClient(server.address, "6.0.0") as seat:
        day29 = await seat.login("u49")
        assert day29.granted
        assert day29.license is not None
        assert day29.license.evaluation_days_left == 1
        server.clock.advance(days=2)
        day31 = await seat.login("u49")
    assert not day31.granted
    assert day31.reason is DenyReason.EVALUATION_EXPIRED
    assert "evaluation ended on 2026-12-02" in day31.message
    status = await admin.status()  # admin calls keep working
    assert status.evaluation_expired
    assert not status.evaluation


async def test_an_extension_moves_the_end_only_for_its_own_installation(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.add_users(["ann"], enable=True)
    status = await admin.status()
    with pytest.raises(PreconditionFailedError) as refused:
        await admin.install_license(vendor.extension("another-installation", date(2027, 1, 31)))
    assert refused.value.reason == "EXTENSION_OTHER_INSTALLATION"
    assert status.installation_id in refused.value.message

    extension = vendor.extension(status.installation_id, date(2027, 1, 31))
    _, extended = await admin.install_license(extension)
    assert extended.evaluation_ends_at is not None
    assert extended.evaluation_ends_at.date() == date(2027, 2, 1)
    with pytest.raises(AlreadyExistsError):  # replaying the same extension
        await admin.install_license(extension)
    server.clock.advance(days=40)
    async with SeatClient(server.address, "6.0.0") as seat:
        assert (await seat.login("ann")).granted


async def test_over_capacity_users_are_the_last_enabled_and_are_named(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(3, license_id="L-3"))
    await admin.install_license(vendor.issue(2, license_id="L-2"))
    await admin.add_users(["a", "b", "c", "d", "e"])
    for name in ["c", "a", "e", "b", "d"]:  # enable order, not name order
        await admin.enable_users([name])
    with pytest.raises(PreconditionFailedError) as refused:
        await admin.remove_license("L-2")
    assert refused.value.reason == "REMOVAL_EXCEEDS_SEATS"
    assert (await admin.status()).seats_total == 5

    _, status = await admin.remove_license("L-2", force=True)
    assert status.seats_total == 3
    assert status.over_capacity == ("b", "d")
    flagged = {u.name for u in await admin.list_users() if u.over_capacity}
    assert flagged == {"b", "d"}
    async with SeatClient(server.address, "6.0.0") as seat:
        assert (await seat.login("e")).granted
        late = await seat.login("d")
    assert late.reason is DenyReason.OVER_CAPACITY
    assert "3 OfficeStatus seats" in late.message
    # Disabling an early user lets the next in line in.
    await admin.disable_users(["a"])
    assert (await admin.status()).over_capacity == ("d",)


async def test_admin_calls_without_or_with_a_wrong_token_are_refused(
    server: RunningServer, vendor: Vendor
) -> None:
    calls: dict[str, Callable[[AdminClient], Awaitable[object]]] = {
        "install": lambda c: c.install_license(vendor.issue(25)),
        "remove": lambda c: c.remove_license("L-1"),
        "licenses": lambda c: c.list_licenses(),
        "add": lambda c: c.add_users(["mallory"], enable=True),
        "enable": lambda c: c.enable_users(["mallory"]),
        "disable": lambda c: c.disable_users(["mallory"]),
        "users": lambda c: c.list_users(),
        "status": lambda c: c.status(),
        "audit": lambda c: c.audit(),
    }
    async with AdminClient(server.address, "wrong-token-0123456789") as client:
        for name, call in calls.items():
            with pytest.raises(AuthenticationError) as refused:
                await call(client)
            assert refused.value.reason == "ADMIN_TOKEN_INVALID", name
    # No token at all (the typed client never sends an empty one): a raw call.
    async with grpc.aio.insecure_channel(server.address) as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raw:
            await stub.GetStatus(admin_service_pb2.GetStatusRequest())
    assert raw.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "needs the server's admin token" in (raw.value.details() or "")
    async with AdminClient(server.address, server.token) as admin:
        assert await admin.list_users() == []
        assert await admin.list_licenses() == []


async def test_a_restart_keeps_everything(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(25, license_id="L-KEEP"))
    await admin.add_users(["Zoe", "yan"], enable=True)
    await admin.disable_users(["yan"])
    before = (await admin.status(), await admin.list_users(), await admin.audit())
    await server.restart()
    async with AdminClient(server.address, server.token) as again:
        after = (await again.status(), await again.list_users(), await again.audit())
    assert after == before


async def test_200_concurrent_enables_against_35_free_seats_enable_exactly_35(
    admin: AdminClient, vendor: Vendor, server: RunningServer
) -> None:
    await admin.install_license(vendor.issue(35))
    names = [f"racer{i:03d}" for i in range(200)]
    await admin.add_users(names)

    async def enable(name: str) -> bool:
        async with AdminClient(server.address, server.token) as own:
            try:
                await own.enable_users([name])
            except SeatsExhaustedError:
                return False
            return True

    results = await asyncio.gather(*(enable(n) for n in names))
    assert sum(results) == 35
    status = await admin.status()
    assert (status.users_enabled, status.seats_used) == (35, 35)
    # What the database holds, not only what the server remembers.
    db = sqlite3.connect(server.config.database_path)
    try:
        (enabled,) = db.execute("SELECT count(*) FROM users WHERE enabled = 1").fetchone()
    finally:
        db.close()
    assert enabled == 35


async def test_names_compare_like_windows_account_names(admin: AdminClient) -> None:
    await admin.add_users(["  Alice "])
    with pytest.raises(AlreadyExistsError):
        await admin.add_users(["ALICE"])
    users, _ = await admin.enable_users(["alice"])
    assert users[0].name == "Alice"
    for bad in ("", "   ", "a\x00b", "tab\there", "x" * 300):
        with pytest.raises(InvalidArgumentError):
            await admin.add_users([bad])
    with pytest.raises(NotFoundError):
        await admin.enable_users(["nobody"])
    assert [u.name for u in await admin.list_users()] == ["Alice"]


async def test_refused_changes_leave_no_trace(admin: AdminClient, vendor: Vendor) -> None:
    await admin.install_license(vendor.issue(2))
    await admin.add_users(["a", "b", "c"])
    before = (await admin.list_users(), await admin.list_licenses(), await admin.audit())
    refusals = [
        admin.enable_users(["a", "b", "c"]),
        admin.add_users(["d", "a"]),
        admin.add_users(["e", "E"]),
        admin.remove_license("L-nope"),
        admin.install_license(vendor.issue(3, major=5)),
        admin.disable_users(["a", "ghost"]),
    ]
    for call in refusals:
        with pytest.raises(OfficeStatusError):
            await call
    after = (await admin.list_users(), await admin.list_licenses(), await admin.audit())
    assert after == before


async def test_every_change_is_in_the_audit_log(admin: AdminClient, vendor: Vendor) -> None:
    await admin.install_license(vendor.issue(5, license_id="L-AUD"))
    await admin.add_users(["amy"], enable=True)
    await admin.disable_users(["amy"])
    await admin.remove_license("L-AUD")
    records = await admin.audit()
    assert [(r.action, r.subject) for r in records] == [
        ("license.remove", "L-AUD"),
        ("users.disable", "amy"),
        ("users.add", "amy"),
        ("license.install", "L-AUD"),
    ]
    assert "5 seats" in records[-1].result
    assert all(r.at is not None for r in records)


async def test_a_key_edited_in_the_database_stops_counting_after_a_restart(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(5, license_id="L-EDIT"))

    def forge(db: sqlite3.Connection) -> None:
        (text,) = db.execute("SELECT key_text FROM licenses").fetchone()
        head, _, signature = text.split(".")
        forged = vendor.key(500, license_id="L-EDIT")
        forged_payload = sign_key(forged, SigningKey.generate("kms-test").private_key).split(".")[1]
        db.execute("UPDATE licenses SET key_text = ?", (f"{head}.{forged_payload}.{signature}",))

    await server.restart(edit=forge)
    async with AdminClient(server.address, server.token) as again:
        status = await again.status()
    assert status.seats_total == 0
    assert [n.license_id for n in status.not_counting] == ["L-EDIT"]
    assert "signature" in status.not_counting[0].reason


async def test_many_licenses_are_verified_again_at_a_restart_in_install_order(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    """The start verifies the stored keys in several threads: every key is checked, and
    the licenses keep the order they were installed in."""
    ids = [f"L-{i:02d}" for i in range(11)]
    for i, license_id in enumerate(ids):
        await admin.install_license(vendor.issue(i + 1, license_id=license_id))
    breaking = "UPDATE licenses SET key_text = key_text || 'x' WHERE license_id IN ('L-03', 'L-08')"
    await server.restart(edit=lambda db: db.execute(breaking))
    async with AdminClient(server.address, server.token) as again:
        status = await again.status()
    assert [c.license_id for c in status.counting] == [i for i in ids if i not in ("L-03", "L-08")]
    assert [n.license_id for n in status.not_counting] == ["L-03", "L-08"]
    assert status.seats_total == sum(range(1, 12)) - 4 - 9


async def test_a_5x_license_carried_over_from_an_old_installation_is_listed_as_not_counting(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(25, license_id="L-6"))
    old = sign_key(vendor.key(40, major=5, license_id="L-5"), vendor.signing.private_key)
    carry_over = (
        "INSERT INTO licenses (license_id, key_text, installed_at) VALUES (?, ?, ?)",
        ("L-5", old, "2024-01-01T00:00:00+00:00"),
    )
    await server.restart(edit=lambda db: db.execute(*carry_over))
    async with AdminClient(server.address, server.token) as again:
        status = await again.status()
        licenses = {lic.license_id: lic for lic in await again.list_licenses()}
    assert status.seats_total == 25
    assert [(n.license_id, n.reason) for n in status.not_counting] == [
        ("L-5", "5.x license: does not count on 6.x")
    ]
    assert not licenses["L-5"].counts
    assert licenses["L-5"].kind == LicenseKind.PURCHASED.value


async def test_the_evaluation_does_not_come_back_after_the_last_license_goes(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(5, license_id="L-ONLY"))
    await admin.add_users(["pat"], enable=True)
    _, status = await admin.remove_license("L-ONLY", force=True)
    assert not status.evaluation
    assert status.seats_total == 0
    async with SeatClient(server.address, "6.0.0") as seat:
        refused = await seat.login("pat")
    assert refused.reason is DenyReason.NOT_LICENSED
    await server.restart()
    async with AdminClient(server.address, server.token) as again:
        status = await again.status()
    assert not status.evaluation
    assert status.evaluation_days_left == 0


async def test_the_license_state_a_6x_client_is_shown_follows_every_change(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    """6.x logins and GetLicenseStatus carry the license state: after an enable, an install,
    a removal, a new day of the evaluation, each reply shows the state of that moment."""
    await admin.add_users(["ann", "bob", "cid"], enable=False)
    await admin.enable_users(["ann"])
    async with SeatClient(server.address, "6.0.0") as seat:

        async def shown() -> tuple[int, int, bool, int]:
            info = (await seat.login("ann")).license
            assert info is not None
            status = await seat.license_status()
            assert (status.seats_total, status.seats_used) == (info.seats_total, info.seats_used)
            return info.seats_total, info.seats_used, info.evaluation, info.evaluation_days_left

        assert await shown() == (0, 1, True, 30)
        server.clock.advance(days=1)
        assert await shown() == (0, 1, True, 29)
        await admin.enable_users(["bob"])
        assert await shown() == (0, 2, True, 29)
        await admin.install_license(vendor.issue(10, license_id="L-A"))
        assert await shown() == (10, 2, False, 0)
        await admin.install_license(vendor.issue(5, license_id="L-B"))
        await admin.enable_users(["cid"])
        assert await shown() == (15, 3, False, 0)
        await admin.remove_license("L-B")
        assert await shown() == (10, 3, False, 0)
