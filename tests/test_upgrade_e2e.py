"""The vendor's side end to end: a 5.x customer's upgrade request, a quote by the policy,
upgrade keys, installed on a 6.x server, where their seats count and the 5.x ones do not."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from officestatus_client import AdminClient
from officestatus_client.admin_cli import EXIT_OK
from officestatus_server.cli.vendor_main import main as vendor_cli
from officestatus_server.core.keys import LicenseKind, sign_key
from tests.support import FakeClock, RunningServer, Vendor, admin_cli

# OfficeStatus 6: announced 1 August 2026, released 1 September 2026. The free window
# reaches back three months from the announcement: purchases on or after 1 May 2026.
RELEASE = ["--target-major", "6", "--released", "2026-09-01", "--announced", "2026-08-01"]


async def _admin(server: RunningServer, *argv: str) -> str:
    code, out, err = await admin_cli(server, *argv)
    assert code == EXIT_OK, err
    return out


def _carry_over_5x(db: sqlite3.Connection, vendor: Vendor) -> None:
    """An installation upgraded from OfficeStatus 5 keeps its 5.x licenses (not counting)."""
    keys = [
        vendor.key(25, major=5, license_id="L5-OLD", purchased=date(2024, 3, 1)),
        vendor.key(10, major=5, license_id="L5-NEW", purchased=date(2026, 5, 1)),
        vendor.key(50, major=5, license_id="L5-SITE", kind=LicenseKind.SITE,
                   purchased=date(2023, 1, 9)),
        vendor.key(5, major=5, license_id="L5-PRESS", kind=LicenseKind.FREE_PRESS,
                   purchased=date(2026, 7, 1)),
    ]  # fmt: skip
    db.executemany(
        "INSERT INTO licenses (license_id, key_text, installed_at) VALUES (?, ?, ?)",
        [
            (k.license_id, sign_key(k, vendor.signing.private_key), "2024-03-02T10:00:00+00:00")
            for k in keys
        ],
    )


@pytest.fixture
def vendor_files(tmp_path: Path, vendor: Vendor) -> tuple[Path, Path]:
    private = tmp_path / "kms.private"
    private.write_text(vendor.signing.private_text())
    return private, vendor.write_public_key(tmp_path)


async def test_a_5x_customer_upgrades_to_6_by_the_policy(
    server: RunningServer,
    clock: FakeClock,
    vendor: Vendor,
    vendor_files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private, public = vendor_files
    await server.restart(edit=lambda db: _carry_over_5x(db, vendor))
    async with AdminClient(server.address, server.token) as admin:
        before = await admin.status()
    assert before.seats_total == 0
    assert {n.license_id for n in before.not_counting} == {
        "L5-OLD", "L5-NEW", "L5-SITE", "L5-PRESS"
    }  # fmt: skip

    # The customer: a request file with every license, counting or not.
    request = tmp_path / "upgrade-request.json"
    said = await _admin(server, "upgrade-request", "--out", str(request))
    assert "4 licenses (90 seats)" in said
    document = json.loads(request.read_text())
    assert {lic["license_id"] for lic in document["licenses"]} == {
        "L5-OLD", "L5-NEW", "L5-SITE", "L5-PRESS"
    }  # fmt: skip
    assert all(lic["key"].startswith("OSLK1.") for lic in document["licenses"])

    # The vendor: a quote by the policy (built-in fees: 39.00 a seat, 2900.00 a site).
    quote_file = tmp_path / "quote.json"
    argv = ["quote", "--request", str(request), *RELEASE, "--trust", str(public)]
    assert vendor_cli([*argv, "--out", str(quote_file)]) == 0
    table = capsys.readouterr().out
    lines = {line["license_id"]: line for line in json.loads(quote_file.read_text())["lines"]}
    assert (lines["L5-OLD"]["outcome"], lines["L5-OLD"]["price"]) == ("discounted", "487.50")
    assert (lines["L5-NEW"]["outcome"], lines["L5-NEW"]["price"]) == ("free", "0.00")
    assert "within 3 months before the announcement on 2026-08-01" in lines["L5-NEW"]["rule"]
    assert (lines["L5-SITE"]["outcome"], lines["L5-SITE"]["price"]) == ("discounted", "1450.00")
    assert (lines["L5-PRESS"]["outcome"], lines["L5-PRESS"]["price"]) == ("full price", "195.00")
    assert "Total: 2132.50 EUR" in table

    # The vendor issues the 6.x keys for what the quote upgrades.
    keys = tmp_path / "keys"
    keys.mkdir()
    argv = ["upgrade", "--quote", str(quote_file), "--signing-key", str(private)]
    assert vendor_cli([*argv, "--trust", str(public), "--out-dir", str(keys)]) == 0
    issued = sorted(keys.glob("*.key"))
    assert [p.name for p in issued] == ["L5-NEW-U6.key", "L5-OLD-U6.key", "L5-SITE-U6.key"]
    assert "L5-PRESS: no upgrade key (full price" in capsys.readouterr().out

    # The customer installs them: the 6.x seats count, the 5.x ones still do not. The
    # vendor's tool dates keys by today's calendar; the server's clock reads the same day.
    clock.now = max(clock.now, datetime.now(UTC))
    for key_file in issued:
        await _admin(server, "license", "install", str(key_file))
    async with AdminClient(server.address, server.token) as admin:
        after = await admin.status()
        licenses = {lic.license_id: lic for lic in await admin.list_licenses()}
    assert after.seats_total == 25 + 10 + 50
    assert {c.license_id for c in after.counting} == {"L5-OLD-U6", "L5-NEW-U6", "L5-SITE-U6"}
    assert {n.license_id for n in after.not_counting} == {
        "L5-OLD", "L5-NEW", "L5-SITE", "L5-PRESS"
    }  # fmt: skip
    assert licenses["L5-NEW-U6"].kind == "free-upgrade"
    assert licenses["L5-OLD-U6"].kind == "purchased"
    assert licenses["L5-SITE-U6"].kind == "site"
    assert licenses["L5-OLD-U6"].upgrades_license_id == "L5-OLD"


async def test_an_edited_quote_issues_nothing(
    server: RunningServer,
    vendor: Vendor,
    vendor_files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    private, public = vendor_files
    old = tmp_path / "old.key"
    old.write_text(vendor.issue(25, major=5, license_id="L5-X", purchased=date(2024, 1, 1)))
    quote_file = tmp_path / "quote.json"
    argv = ["quote", "--key", str(old), *RELEASE, "--trust", str(public), "--out", str(quote_file)]
    assert vendor_cli(argv) == 0
    document = json.loads(quote_file.read_text())
    document["lines"][0]["outcome"], document["lines"][0]["price"] = "free", "0.00"
    quote_file.write_text(json.dumps(document))
    capsys.readouterr()
    keys = tmp_path / "keys"
    keys.mkdir()
    argv = ["upgrade", "--quote", str(quote_file), "--signing-key", str(private)]
    assert vendor_cli([*argv, "--trust", str(public), "--out-dir", str(keys)]) == 1
    assert "(QUOTE_MISMATCH)" in capsys.readouterr().err
    assert list(keys.iterdir()) == []


async def test_a_forged_key_in_a_request_is_not_eligible(
    vendor: Vendor, vendor_files: tuple[Path, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _, public = vendor_files
    forger = Vendor()  # another private key, claiming to be the vendor's
    forged = tmp_path / "forged.key"
    forged.write_text(forger.issue(500, major=5, license_id="L5-FAKE", purchased=date(2026, 7, 1)))
    argv = ["quote", "--key", str(forged), *RELEASE, "--trust", str(public), "--json"]
    assert vendor_cli(argv) == 0
    (line,) = json.loads(capsys.readouterr().out)["lines"]
    assert (line["outcome"], line["price"]) == ("not eligible", "0.00")
    assert "signature" in line["rule"]


async def test_upgrade_preview_shows_what_the_next_release_does_to_the_seats(
    server: RunningServer, admin: AdminClient, vendor: Vendor
) -> None:
    await admin.install_license(vendor.issue(25, license_id="L6-A"))
    await admin.install_license(vendor.issue(5, license_id="L6-P", kind=LicenseKind.FREE_OFFER))
    await admin.add_users([f"u{i}" for i in range(28)], enable=True)
    preview = await admin.preview_upgrade()
    assert (preview.current_major, preview.target_major) == (6, 7)
    assert (preview.seats_now, preview.seats_without_upgrades) == (30, 0)
    assert preview.seats_with_upgrades == 25
    paths = {c.license_id: c.path for c in preview.licenses}
    assert paths == {"L6-A": "upgrade", "L6-P": "buy new"}
    assert "leaving 28 of 28 enabled users without a seat" in preview.summary
    text = await _admin(server, "upgrade-preview")
    assert "OfficeStatus 6 -> 7" in text
    assert "with every possible upgrade: 25" in text


def test_the_price_of_new_licenses_follows_the_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert vendor_cli(["price", "--seats", "10", "--segment", "education"]) == 0
    assert "234.00 EUR (education discount: 40% off 390.00)" in capsys.readouterr().out
    assert vendor_cli(["price", "--seats", "10", "--segment", "government", "--crossgrade"]) == 0
    assert "292.50 EUR (cross-grade discount: 25% off 390.00)" in capsys.readouterr().out
