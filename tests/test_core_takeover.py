"""The takeover's rules, on installations built from the older releases' schemas."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from officestatus_server.core.keys import TrustStore
from officestatus_server.core.legacy_keys import read_legacy_key
from officestatus_server.core.takeover import LEFT_OUT, MERGED, Takeover, plan_takeover
from officestatus_server.takeover.read import read_legacy
from tests.legacy_servers import (
    LegacyInstallation,
    LegacySession,
    LegacyUser,
    LegacyVendor,
    flip_one_byte,
)

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _plan(tmp_path: Path, old: LegacyInstallation, vendor: LegacyVendor) -> Takeover:
    old.write(tmp_path)
    trust = TrustStore({vendor.kid: Ed25519PublicKey.from_public_bytes(vendor.public_raw())})
    return plan_takeover(read_legacy(tmp_path), partial(read_legacy_key, trust=trust), "here", NOW)


def _seat_order(plan: Takeover) -> list[str]:
    enabled = [u for u in plan.users if u.enabled]
    return [u.name for u in sorted(enabled, key=lambda u: u.enable_seq or 0)]


def test_3x_seats_go_in_rowid_order(tmp_path: Path) -> None:
    old = LegacyInstallation(
        release=3, users=[LegacyUser("zoe"), LegacyUser("off", enabled=False), LegacyUser("amy")]
    )
    plan = _plan(tmp_path, old, LegacyVendor())
    assert _seat_order(plan) == ["zoe", "amy"]
    assert [u.name for u in plan.users if not u.enabled] == ["off"]


@pytest.mark.parametrize("release", [4, 5])
def test_4x_and_5x_seats_go_by_enabled_at_with_null_first(tmp_path: Path, release: int) -> None:
    old = LegacyInstallation(
        release=release,
        users=[
            LegacyUser("late", enabled_at="2023-05-01 10:00:00"),
            LegacyUser("from3x-a"),
            LegacyUser("early", enabled_at="2022-01-01 10:00:00"),
            LegacyUser("from3x-b"),
        ],
    )
    plan = _plan(tmp_path, old, LegacyVendor())
    assert _seat_order(plan) == ["from3x-a", "from3x-b", "early", "late"]


def test_rows_that_are_one_account_become_one_user_at_the_earliest_seat(tmp_path: Path) -> None:
    old = LegacyInstallation(
        release=4,
        users=[
            LegacyUser("first", enabled_at="2022-01-01 00:00:00"),
            LegacyUser("ÅSA", enabled=False),
            LegacyUser("anna ", enabled_at="2024-01-01 00:00:00"),
            LegacyUser("Jose\u0301", enabled_at="2023-06-01 00:00:00"),
            LegacyUser("åsa", enabled_at="2025-01-01 00:00:00"),
            LegacyUser("anna", enabled_at="2021-06-01 00:00:00"),
            LegacyUser("Jos\u00e9", enabled=False),
        ],
    )
    plan = _plan(tmp_path, old, LegacyVendor())
    by_name = {u.name: u for u in plan.users}
    assert set(by_name) == {"first", "José", "anna", "ÅSA"}
    # Named as the first row, enabled because one row was, at the earliest seat.
    assert by_name["ÅSA"].enabled
    assert _seat_order(plan) == ["anna", "first", "José", "ÅSA"]
    merged = [i for i in plan.items if i.outcome == MERGED and i.kind == "user"]
    assert len(merged) == 3
    assert any("'åsa'" in i.detail for i in merged)


def test_a_name_6x_refuses_is_left_out_with_the_reason(tmp_path: Path) -> None:
    old = LegacyInstallation(release=3, users=[LegacyUser("ok"), LegacyUser("bad\x07name")])
    plan = _plan(tmp_path, old, LegacyVendor())
    assert [u.name for u in plan.users] == ["ok"]
    (item,) = [i for i in plan.items if i.outcome == LEFT_OUT and i.kind == "user"]
    assert "U+0007" in item.detail


def test_licenses_are_verified_duplicates_carried_once_and_none_counts(tmp_path: Path) -> None:
    vendor, stranger = LegacyVendor(), LegacyVendor(kid="not-kms")
    keys = [
        vendor.key("L5-1", major=5, seats=25),
        vendor.key("L5-1", major=5, seats=25, issued="2023-01-01"),
        vendor.key("L4-2", major=4, kind="site", seats=100),
        flip_one_byte(vendor.key("L5-3", major=5)),
        stranger.key("L5-4", major=5),
        vendor.key("L5-5", major=5, upgrades="L4-2"),
    ]
    plan = _plan(tmp_path, LegacyInstallation(release=5, licenses=keys), vendor)
    assert [lic.license_id for lic in plan.licenses] == ["L5-1", "L4-2", "L5-5"]
    assert all(lic.key is not None and lic.key.major_version < 6 for lic in plan.licenses)
    left_out = [i for i in plan.items if i.kind == "license" and i.outcome == LEFT_OUT]
    assert len(left_out) == 2
    assert any("does not trust" in i.detail for i in left_out)


def test_live_5x_sessions_are_carried_and_stale_ones_dropped(tmp_path: Path) -> None:
    old = LegacyInstallation(
        release=5,
        heartbeat_seconds=60,
        users=[LegacyUser("anna"), LegacyUser("bob")],
        sessions=[
            LegacySession("a" * 32, "anna", last_seen_at="2026-12-03 08:58:30"),
            LegacySession("b" * 32, "bob", last_seen_at="2026-12-03 08:50:00"),
            LegacySession("c" * 32, "ghost", last_seen_at="2026-12-03 08:59:00"),
        ],
    )
    plan = _plan(tmp_path, old, LegacyVendor())
    assert [s.session_id for s in plan.sessions] == ["a" * 32]
    assert plan.heartbeat_seconds == 60


def test_the_id_is_kept_the_evaluation_begins_now_and_the_audit_follows(tmp_path: Path) -> None:
    old = LegacyInstallation(
        release=4,
        installation_id="11111111-2222-3333-4444-555555555555",
        audit=[
            ("2022-01-01 10:00:00", "DOM\\adm", "user.add", "anna"),
            ("2022-01-02 10:00:00", "DOM\\adm", "license.add", "L4-1"),
        ],
    )
    plan = _plan(tmp_path, old, LegacyVendor())
    assert plan.installation.installation_id == "11111111-2222-3333-4444-555555555555"
    assert plan.installation.first_started_at == NOW
    assert [a.action for a in plan.audit] == ["4.x user.add", "4.x license.add", "takeover"]
    assert plan.audit[-1].result.startswith(plan.summary + "; the report: ")
    assert "4.x installation 11111111" in plan.summary


@pytest.mark.parametrize("release", [3, 4, 5])
def test_keys_of_every_kind_of_each_release(tmp_path: Path, release: int) -> None:
    vendor = LegacyVendor()
    earlier = release - 1
    # A 4.x or 5.x server may hold a key of the release before (kept from its own upgrade);
    # a 3.x upgrade key names a 2.x serial number, which no server holds as a key.
    older = [vendor.key(f"L{earlier}-OLD", major=earlier, seats=5)] if release > 3 else []
    keys = [
        vendor.key(f"L{release}-P", major=release, seats=25),
        vendor.key(f"L{release}-P", major=release, seats=25, issued="2024-02-02"),  # duplicate
        vendor.key(f"L{release}-S", major=release, kind="site", seats=200),
        vendor.key(f"L{release}-F", major=release, kind="free", seats=1),
        *older,
        vendor.key(f"L{release}-U", major=release, seats=5, upgrades=f"L{earlier}-OLD"),
        flip_one_byte(vendor.key(f"L{release}-X", major=release, seats=99)),
        LegacyVendor(kid="someone-else").key(f"L{release}-Y", major=release, seats=99),
    ]
    extensions = (
        []
        if release == 3
        else [
            vendor.key(
                "E-1",
                major=release,
                kind="extension",
                seats=0,
                installation="6f1c1e0a-3b7e-4c55-9a57-2c1d8f0e4b21",
                until="2021-05-01",
            )
        ]
    )
    old = LegacyInstallation(release=release, licenses=keys, extensions=extensions)
    plan = _plan(tmp_path, old, vendor)
    carried = {lic.license_id: lic.key for lic in plan.licenses}
    assert sorted(carried) == sorted(
        [f"L{release}-P", f"L{release}-S", f"L{release}-F", f"L{release}-U"]
        + ([f"L{earlier}-OLD"] if older else [])
    )
    assert all(key is not None and key.major_version == int(lid[1]) for lid, key in carried.items())
    u = carried[f"L{release}-U"]
    assert u is not None
    assert u.upgrades_license_id == f"L{earlier}-OLD"
    lines = [i.line() for i in plan.items if i.kind in ("license", "extension")]
    assert f"license L{release}-P: merged (a duplicate key of the same license)" in lines
    assert (
        f"license L{release}-F: taken over ({release}.x, 1 seat, free; does not count on 6.x)"
        in (lines)
    )
    left_out = [i for i in plan.items if i.outcome == LEFT_OUT and i.kind == "license"]
    assert len(left_out) == 2
    ext = [i for i in plan.items if i.kind == "extension"]
    assert len(ext) == len(extensions)
    assert all(i.outcome == LEFT_OUT and "history only" in i.detail for i in ext)


def test_the_summary_counts_one_of_a_kind_in_the_singular(tmp_path: Path) -> None:
    vendor = LegacyVendor()
    old = LegacyInstallation(
        release=5,
        users=[LegacyUser("anna"), LegacyUser("ANNA ", enabled=False)],
        licenses=[vendor.key("L5-1", major=5), flip_one_byte(vendor.key("L5-2", major=5))],
        audit=[("2022-01-01 10:00:00", "DOM\\adm", "user.add", "anna")],
    )
    plan = _plan(tmp_path, old, vendor)
    assert ": 1 user (1 enabled), 1 license, 0 sessions, 1 name merged, 1 item left out" in (
        plan.summary
    )
    assert any(i.kind == "audit" and i.subject == "1 record" for i in plan.items)


def test_the_audit_record_shows_at_most_fifty_lines_that_need_a_look(tmp_path: Path) -> None:
    names = [LegacyUser(f"user{i:03d}") for i in range(60)]
    twins = [LegacyUser(f"user{i:03d} ", enabled=False) for i in range(60)]
    plan = _plan(tmp_path, LegacyInstallation(release=5, users=[*names, *twins]), LegacyVendor())
    result = plan.audit[-1].result
    assert result.count(": merged (") == 50
    assert "; and 10 more; the report: " in result
