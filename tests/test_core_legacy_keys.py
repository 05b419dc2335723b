"""The 3.x-5.x `OSK-` license keys: read and verified as the released format says."""

from __future__ import annotations

from datetime import date

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from officestatus_server.core.keys import LicenseKind, TrustStore
from officestatus_server.core.legacy_keys import read_legacy_key
from officestatus_server.errors import KeyRejected
from tests.legacy_servers import LegacyVendor, flip_one_byte


@pytest.fixture
def old_vendor() -> LegacyVendor:
    return LegacyVendor()


def _trust(*vendors: LegacyVendor) -> TrustStore:
    return TrustStore({v.kid: Ed25519PublicKey.from_public_bytes(v.public_raw()) for v in vendors})


def test_a_purchased_key_reads_with_every_field(old_vendor: LegacyVendor) -> None:
    text = old_vendor.key(
        "L5-00042", major=5, seats=25, customer="Contoso; Ltd = 100%", purchased="2022-05-01"
    )
    key = read_legacy_key(text, _trust(old_vendor))
    assert (key.license_id, key.major_version, key.seats, key.kind) == (
        "L5-00042",
        5,
        25,
        LicenseKind.PURCHASED,
    )
    assert key.customer == "Contoso; Ltd = 100%"
    assert key.purchase_date == date(2022, 5, 1)
    assert key.signing_key_id == old_vendor.kid


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("site", LicenseKind.SITE), ("free", LicenseKind.FREE)],
)
def test_site_and_free_keys_keep_their_kind(
    old_vendor: LegacyVendor, kind: str, expected: LicenseKind
) -> None:
    key = read_legacy_key(old_vendor.key("L4-1", major=4, kind=kind), _trust(old_vendor))
    assert key.kind is expected
    assert key.kind.is_free == (kind == "free")


def test_an_extension_and_an_upgrade_key_carry_their_extra_fields(
    old_vendor: LegacyVendor,
) -> None:
    trust = _trust(old_vendor)
    extension = read_legacy_key(
        old_vendor.key(
            "X5-7", major=5, kind="extension", seats=0, installation="abc", until="2021-05-01"
        ),
        trust,
    )
    assert extension.kind is LicenseKind.EVALUATION_EXTENSION
    assert (extension.installation_id, extension.evaluation_until) == ("abc", date(2021, 5, 1))
    upgrade = read_legacy_key(old_vendor.key("L5-9", major=5, upgrades="L4-3"), trust)
    assert upgrade.upgrades_license_id == "L4-3"


def test_a_duplicate_keeps_the_original_purchase_date(old_vendor: LegacyVendor) -> None:
    text = old_vendor.key("L5-1", major=5, purchased="2021-01-10", issued="2023-02-01")
    key = read_legacy_key(text, _trust(old_vendor))
    assert (key.purchase_date, key.issue_date) == (date(2021, 1, 10), date(2023, 2, 1))


def test_a_flipped_byte_is_refused(old_vendor: LegacyVendor) -> None:
    text = flip_one_byte(old_vendor.key("L5-1", major=5))
    with pytest.raises(KeyRejected) as refused:
        read_legacy_key(text, _trust(old_vendor))
    assert refused.value.reason in {"KEY_BAD_SIGNATURE", "KEY_MALFORMED"}


def test_a_key_of_an_untrusted_signer_is_refused(old_vendor: LegacyVendor) -> None:
    other = LegacyVendor(kid="someone-else")
    with pytest.raises(KeyRejected) as refused:
        read_legacy_key(other.key("L5-1", major=5), _trust(old_vendor))
    assert refused.value.reason == "KEY_UNKNOWN_SIGNER"
    assert "someone-else" in refused.value.message


def test_a_key_signed_by_another_key_under_a_trusted_id_is_refused(
    old_vendor: LegacyVendor,
) -> None:
    forger = LegacyVendor(kid=old_vendor.kid)
    with pytest.raises(KeyRejected) as refused:
        read_legacy_key(forger.key("L5-1", major=5, seats=999), _trust(old_vendor))
    assert refused.value.reason == "KEY_BAD_SIGNATURE"


@pytest.mark.parametrize(
    "text",
    ["OSK-", "OSK-AAAA", "OSK-AAAA-", "OSK-aaaa-BBBB", "OSK-AAAA-BBBB", "OSLK1.x.y", ""],
)
def test_damaged_text_is_malformed_never_a_crash(old_vendor: LegacyVendor, text: str) -> None:
    with pytest.raises(KeyRejected) as refused:
        read_legacy_key(text, _trust(old_vendor))
    assert refused.value.reason == "KEY_MALFORMED"
