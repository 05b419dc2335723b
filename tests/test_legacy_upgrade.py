"""3.x-5.x (`OSK-`) keys serve the upgrade: read by the one entry point for either format,
verified at every start of a server that carries them, shown as not counting with the way
to their seats, listed in the upgrade request and the preview, and priced by the vendor's
quote by the published policy."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from officestatus_client import AdminClient, PreconditionFailedError
from officestatus_client.admin_cli import EXIT_OK
from officestatus_server.cli.vendor_main import main as vendor_cli
from officestatus_server.cli.vendor_upgrade import holding_of, load_policy
from officestatus_server.core.keys import (
    LicenseKey,
    LicenseKind,
    TrustStore,
    armour,
    public_key_text,
    sign_key,
)
from officestatus_server.core.legacy_keys import read_any_key, unverified_fields
from officestatus_server.core.model import InstalledLicense
from officestatus_server.core.registry import not_counting_reason
from officestatus_server.core.upgrade import (
    Outcome,
    TargetRelease,
    UpgradePath,
    preview_upgrade,
    quote,
)
from officestatus_server.errors import KeyRejected
from tests.legacy_servers import LegacyVendor, flip_one_byte
from tests.support import START, FakeClock, RunningServer, Vendor, admin_cli

# OfficeStatus 6: announced 1 August 2026, released 1 September 2026. The free window
# reaches back three months from the announcement: purchases on or after 1 May 2026.
RELEASE = ["--target-major", "6", "--released", "2026-09-01", "--announced", "2026-08-01"]


@pytest.fixture
def old_vendor() -> LegacyVendor:
    return LegacyVendor()


def legacy_public_text(old: LegacyVendor) -> str:
    """The legacy signing key's public half in the 6.x public key file format."""
    return public_key_text(old.kid, Ed25519PublicKey.from_public_bytes(old.public_raw()))


def both_trusted(vendor: Vendor, old: LegacyVendor) -> TrustStore:
    return TrustStore.from_public_key_texts([vendor.signing.public_text(), legacy_public_text(old)])


# --- one entry point for both formats ----------------------------------------------------


def test_read_any_key_reads_a_6x_key_and_a_legacy_key(
    vendor: Vendor, old_vendor: LegacyVendor
) -> None:
    trust = both_trusted(vendor, old_vendor)
    six_text = vendor.issue(25, license_id="L6-1")  # armoured, wrapped, as e-mailed
    six, six_compact = read_any_key(six_text, trust)
    assert (six.license_id, six.major_version, six_compact[:6]) == ("L6-1", 6, "OSLK1.")

    legacy = old_vendor.key("L5-00042", major=5, kind="site", seats=50, purchased="2022-05-01")
    # Pasted with the blanks and line breaks a mail program adds.
    wrapped = "\n  " + "\n".join(legacy[i : i + 40] for i in range(0, len(legacy), 40)) + " \n"
    key, compact = read_any_key(wrapped, trust)
    assert compact == legacy
    assert (key.license_id, key.major_version, key.kind, key.seats) == (
        "L5-00042",
        5,
        LicenseKind.SITE,
        50,
    )
    assert key.purchase_date == date(2022, 5, 1)


def test_read_any_key_refuses_a_damaged_or_untrusted_legacy_key(
    vendor: Vendor, old_vendor: LegacyVendor
) -> None:
    legacy = old_vendor.key("L5-1", major=5)
    with pytest.raises(KeyRejected) as damaged:
        read_any_key(flip_one_byte(legacy), both_trusted(vendor, old_vendor))
    assert damaged.value.reason in {"KEY_BAD_SIGNATURE", "KEY_MALFORMED"}
    with pytest.raises(KeyRejected) as untrusted:
        read_any_key(legacy, vendor.trust)  # the 6.x key only
    assert untrusted.value.reason == "KEY_UNKNOWN_SIGNER"
    with pytest.raises(KeyRejected) as junk:
        read_any_key("OSK-not a key", vendor.trust)
    assert junk.value.reason == "KEY_MALFORMED"


def test_what_an_unverified_legacy_key_claims_is_read_for_the_quote(
    vendor: Vendor, old_vendor: LegacyVendor
) -> None:
    legacy = old_vendor.key("L4-7", major=4, kind="free", seats=3, purchased="2020-02-02")
    claimed = unverified_fields(legacy)
    assert claimed == {
        "kid": old_vendor.kid,
        "lid": "L4-7",
        "kind": "free",
        "customer": "Contoso Ltd",
        "purchased": "2020-02-02",
        "major": 4,
        "seats": 3,
    }
    assert unverified_fields("no key at all") == {}
    # The vendor, without the legacy public key: not eligible, named by what it claims.
    holding, _ = holding_of(legacy, vendor.trust)
    assert (holding.license_id, holding.major, holding.kind, holding.verified) == (
        "L4-7",
        4,
        LicenseKind.FREE,
        False,
    )
    assert "does not trust" in holding.problem


def test_a_legacy_license_does_not_count_and_says_to_request_an_upgrade(
    vendor: Vendor, old_vendor: LegacyVendor
) -> None:
    legacy = old_vendor.key("L5-2", major=5)
    key, compact = read_any_key(legacy, both_trusted(vendor, old_vendor))
    lic = InstalledLicense("L5-2", compact, START, key)
    assert not_counting_reason(lic, 6) == "5.x license: does not count on 6.x; request an upgrade"


def test_the_preview_sees_legacy_and_6x_keys_alike(
    vendor: Vendor, old_vendor: LegacyVendor
) -> None:
    trust = both_trusted(vendor, old_vendor)
    texts = {
        "L6-A": vendor.issue(25, license_id="L6-A"),
        "L5-P": old_vendor.key("L5-P", major=5, seats=10),
        "L5-S": old_vendor.key("L5-S", major=5, kind="site", seats=40),
        "L4-F": old_vendor.key("L4-F", major=4, kind="free", seats=5),
        "X5-E": old_vendor.key(
            "X5-E", major=5, kind="extension", seats=0, installation="abc", until="2021-05-01"
        ),
    }
    installed: list[tuple[str, LicenseKey | None]] = [
        (lid, read_any_key(text, trust)[0]) for lid, text in texts.items()
    ]
    installed.append(("L5-GONE", None))

    to_6 = preview_upgrade(installed, 6, 7, seats_now=25, users_enabled=30)
    paths = {c.license_id: c.path for c in to_6.candidates}
    assert paths == {
        "L6-A": UpgradePath.UPGRADE,
        "L5-P": UpgradePath.UPGRADE,
        "L5-S": UpgradePath.UPGRADE,
        "L4-F": UpgradePath.BUY_NEW,
        "X5-E": UpgradePath.NOT_A_LICENSE,
        "L5-GONE": UpgradePath.NOT_A_LICENSE,
    }
    assert (to_6.seats_without_upgrades, to_6.seats_with_upgrades) == (0, 25 + 10 + 40)
    notes = {c.license_id: c.note for c in to_6.candidates}
    assert "site license is upgraded whole" in notes["L5-S"]
    assert "received free (free)" in notes["L4-F"]
    majors = {c.license_id: c.major for c in to_6.candidates}
    assert (majors["L5-P"], majors["L4-F"]) == (5, 4)


# --- end to end: a server carrying legacy keys, its request, the vendor's quote ---------


def _key_row(text: str, license_id: str) -> tuple[str, str, str]:
    return (license_id, text, "2026-10-30T10:00:00+00:00")


def _legacy_keys(old: LegacyVendor) -> dict[str, str]:
    """The keys a 5.x installation held, as a takeover carries them (text unchanged)."""
    return {
        "L5-OLD": old.key("L5-OLD", major=5, seats=25, purchased="2024-03-01"),
        "L5-NEW": old.key("L5-NEW", major=5, seats=10, purchased="2026-05-01"),
        "L5-SITE": old.key("L5-SITE", major=5, kind="site", seats=50, purchased="2023-01-09"),
        "L5-FREE": old.key("L5-FREE", major=5, kind="free", seats=5, purchased="2026-07-01"),
        # A duplicate re-issued after a loss, inside the free window: the original
        # purchase date decides.
        "L4-DUP": old.key("L4-DUP", major=4, seats=10, purchased="2022-02-01", issued="2026-06-15"),
        # A 4.x license and its upgrade to 5.x: only the upgrade moves on.
        "L4-UP": old.key("L4-UP", major=4, seats=8, purchased="2020-06-01"),
        "L5-UP": old.key("L5-UP", major=5, seats=8, purchased="2025-01-10", upgrades="L4-UP"),
    }


async def _admin(server: RunningServer, *argv: str) -> str:
    code, out, err = await admin_cli(server, *argv)
    assert code == EXIT_OK, err
    return out


async def test_the_upgrade_request_and_the_vendors_quote_of_legacy_keys(
    server: RunningServer,
    clock: FakeClock,
    vendor: Vendor,
    old_vendor: LegacyVendor,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The server trusts the legacy signing key the same way as the 6.x one: a public key file.
    keys_dir = server.config.vendor_keys_dir
    keys_dir.mkdir(parents=True, exist_ok=True)
    (keys_dir / f"{old_vendor.kid}.pub").write_text(legacy_public_text(old_vendor))
    legacy = _legacy_keys(old_vendor)

    def carry(db: sqlite3.Connection) -> None:
        rows = [_key_row(text, lid) for lid, text in legacy.items()]
        db.executemany(
            "INSERT INTO licenses (license_id, key_text, installed_at) VALUES (?, ?, ?)", rows
        )

    await server.restart(edit=carry)
    six_text = vendor.issue(20, license_id="L6-A", purchased=START.date())
    async with AdminClient(server.address, server.token) as admin:
        await admin.install_license(six_text)
        # A legacy key given to the install verifies, and is refused for its major.
        with pytest.raises(PreconditionFailedError) as older:
            await admin.install_license(old_vendor.key("L5-MORE", major=5))
        assert older.value.reason == "LICENSE_OLDER_MAJOR"
    # Verified again at the next start, as at every start.
    await server.restart()
    async with AdminClient(server.address, server.token) as admin:
        status = await admin.status()
        licenses = {lic.license_id: lic for lic in await admin.list_licenses()}
    assert status.seats_total == 20
    reasons = {n.license_id: n.reason for n in status.not_counting}
    assert reasons == {
        "L5-OLD": "5.x license: does not count on 6.x; request an upgrade",
        "L5-NEW": "5.x license: does not count on 6.x; request an upgrade",
        "L5-SITE": "5.x license: does not count on 6.x; request an upgrade",
        "L5-FREE": "5.x license: does not count on 6.x; request an upgrade",
        "L4-DUP": "4.x license: does not count on 6.x; request an upgrade",
        "L4-UP": "4.x license: does not count on 6.x; request an upgrade",
        "L5-UP": "5.x license: does not count on 6.x; request an upgrade",
    }
    assert (licenses["L5-SITE"].kind, licenses["L5-SITE"].seats) == ("site", 50)
    assert licenses["L5-FREE"].kind == "free"
    status_out = await _admin(server, "status")
    assert "5.x license: does not count on 6.x; request an upgrade" in status_out

    # The preview lists them with the 6.x license.
    preview = await _admin(server, "upgrade-preview")
    for license_id in [*legacy, "L6-A"]:
        assert license_id in preview

    # The customer's request carries every legacy key as it was installed.
    request = tmp_path / "upgrade-request.json"
    said = await _admin(server, "upgrade-request", "--out", str(request))
    assert "8 licenses (136 seats)" in said
    document = json.loads(request.read_text())
    keys = {lic["license_id"]: lic["key"] for lic in document["licenses"]}
    assert {lid: keys[lid] for lid in legacy} == legacy
    by_id = {lic["license_id"]: lic for lic in document["licenses"]}
    assert by_id["L4-DUP"]["purchase_date"] == "2022-02-01"
    assert by_id["L5-OLD"]["major_version"] == 5

    # The customer also sends the original key of the duplicate (it has the same id).
    original = tmp_path / "L4-DUP-original.key"
    original.write_text(old_vendor.key("L4-DUP", major=4, seats=10, purchased="2022-02-01"))
    six_pub = vendor.write_public_key(tmp_path)
    old_pub = tmp_path / f"{old_vendor.kid}.pub"
    old_pub.write_text(legacy_public_text(old_vendor))
    quote_file = tmp_path / "quote.json"
    capsys.readouterr()
    argv = ["quote", "--request", str(request), "--key", str(original), *RELEASE]
    trust = ["--trust", str(six_pub), "--trust", str(old_pub)]
    assert vendor_cli([*argv, *trust, "--out", str(quote_file)]) == 0
    table = capsys.readouterr().out
    quoted = json.loads(quote_file.read_text())["lines"]
    assert sorted(line["license_id"] for line in quoted) == sorted([*legacy, "L6-A"])
    lines = {line["license_id"]: line for line in quoted}
    # Built-in fees: 39.00 a seat, 2900.00 a site; 50% for an upgrade.
    priced = {lid: (line["outcome"], line["price"]) for lid, line in lines.items()}
    assert priced == {
        "L5-OLD": ("discounted", "487.50"),
        "L5-NEW": ("free", "0.00"),
        "L5-SITE": ("discounted", "1450.00"),
        "L5-FREE": ("full price", "195.00"),
        "L4-DUP": ("discounted", "195.00"),
        "L4-UP": ("not needed", "0.00"),
        "L5-UP": ("discounted", "156.00"),
        "L6-A": ("not needed", "0.00"),
    }
    assert "upgraded already by L5-UP" in lines["L4-UP"]["rule"]
    assert "within 3 months before the announcement on 2026-08-01" in lines["L5-NEW"]["rule"]
    assert "site license, upgraded whole" in lines["L5-SITE"]["rule"]
    assert "received free (free)" in lines["L5-FREE"]["rule"]
    assert lines["L4-DUP"]["purchase_date"] == "2022-02-01"
    assert all(lines[lid]["verified"] for lid in lines)
    assert lines["L5-OLD"]["key"] == legacy["L5-OLD"]
    assert "Total: 2483.50 EUR" in table

    # Without the legacy public key the vendor's tool prices none of them.
    capsys.readouterr()
    assert vendor_cli([*argv, "--trust", str(six_pub), "--json"]) == 0
    untrusted = {line["license_id"]: line for line in json.loads(capsys.readouterr().out)["lines"]}
    assert {untrusted[lid]["outcome"] for lid in legacy} == {"not eligible"}
    assert untrusted["L6-A"]["outcome"] == "not needed"

    # The vendor issues 6.x keys for what the quote upgrades; they count on the server.
    private = tmp_path / "kms.private"
    private.write_text(vendor.signing.private_text())
    issued_dir = tmp_path / "issued"
    issued_dir.mkdir()
    argv = ["upgrade", "--quote", str(quote_file), "--signing-key", str(private), *trust]
    assert vendor_cli([*argv, "--out-dir", str(issued_dir)]) == 0
    issued = sorted(issued_dir.glob("*.key"))
    assert [p.name for p in issued] == [
        "L4-DUP-U6.key",
        "L5-NEW-U6.key",
        "L5-OLD-U6.key",
        "L5-SITE-U6.key",
        "L5-UP-U6.key",
    ]
    clock.now = max(clock.now, datetime.now(UTC))
    for key_file in issued:
        await _admin(server, "license", "install", str(key_file))
    async with AdminClient(server.address, server.token) as admin:
        after = await admin.status()
    assert after.seats_total == 20 + 10 + 10 + 25 + 50 + 8
    assert {n.license_id for n in after.not_counting} == set(legacy)

    # Asked again, the vendor charges nothing twice: what is upgraded is not needed.
    again = tmp_path / "upgrade-request-2.json"
    await _admin(server, "upgrade-request", "--out", str(again))
    capsys.readouterr()
    argv = ["quote", "--request", str(again), *RELEASE, *trust, "--json"]
    assert vendor_cli(argv) == 0
    second = json.loads(capsys.readouterr().out)
    outcomes = {line["license_id"]: line["outcome"] for line in second["lines"]}
    assert outcomes["L5-OLD"] == outcomes["L5-SITE"] == outcomes["L4-UP"] == "not needed"
    assert outcomes["L5-FREE"] == "full price"
    assert second["total"] == "195.00"


def test_a_license_upgraded_already_is_not_quoted_or_previewed_again(
    vendor: Vendor, old_vendor: LegacyVendor
) -> None:
    trust = both_trusted(vendor, old_vendor)
    texts = [
        old_vendor.key("L3-1", major=3, seats=6, purchased="2018-01-01"),
        old_vendor.key("L4-1", major=4, seats=6, purchased="2020-01-01", upgrades="L3-1"),
        old_vendor.key("L5-1", major=5, seats=6, purchased="2022-01-01", upgrades="L4-1"),
        # A forged "upgrade" proves nothing: L5-2 stays quoted.
        flip_one_byte(old_vendor.key("L5-X", major=5, seats=6, upgrades="L5-2")),
        old_vendor.key("L5-2", major=5, seats=2, purchased="2022-01-01"),
    ]
    holdings = [holding_of(text, trust)[0] for text in texts]
    target = TargetRelease(6, date(2026, 9, 1), date(2026, 8, 1))
    result = quote(holdings, target, load_policy(None))
    outcomes = {line.holding.license_id: line.outcome for line in result.lines}
    assert outcomes["L3-1"] is Outcome.NOT_NEEDED
    assert outcomes["L4-1"] is Outcome.NOT_NEEDED
    assert outcomes["L5-1"] is Outcome.DISCOUNTED
    assert outcomes["L5-2"] is Outcome.DISCOUNTED
    assert result.total == Decimal("117.00") + Decimal("39.00")

    installed = [
        (lid, read_any_key(t, trust)[0])
        for lid, t in zip(["L3-1", "L4-1", "L5-1"], texts, strict=False)
    ]
    preview = preview_upgrade(installed, 6, 7, seats_now=0, users_enabled=0)
    paths = {c.license_id: c.path for c in preview.candidates}
    assert paths == {
        "L3-1": UpgradePath.NOT_NEEDED,
        "L4-1": UpgradePath.NOT_NEEDED,
        "L5-1": UpgradePath.UPGRADE,
    }
    assert preview.seats_with_upgrades == 6


def test_a_legacy_key_file_is_read_the_same_as_one_in_a_request(
    vendor: Vendor, old_vendor: LegacyVendor
) -> None:
    trust = both_trusted(vendor, old_vendor)
    text = old_vendor.key("L3-1", major=3, seats=4, purchased="2019-04-04")
    holding, compact = holding_of(text + "\r\n", trust)
    assert compact == text
    assert (holding.license_id, holding.major, holding.seats, holding.verified) == (
        "L3-1",
        3,
        4,
        True,
    )
    # A 6.x key still reads as before.
    six, _ = holding_of(armour(sign_key(vendor.key(3), vendor.signing.private_key)), trust)
    assert six.verified
    assert six.major == 6
