"""License keys: signing, reading, tampering, malformed texts and vendor key files."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import date
from typing import Any

import pytest

from officestatus_server.core.keys import (
    ARMOUR_BEGIN,
    ARMOUR_END,
    MAX_KEY_TEXT,
    MAX_SEATS,
    LicenseKey,
    LicenseKind,
    SigningKey,
    TrustStore,
    armour,
    decode_unverified,
    normalise_key_text,
    public_key_text,
    read_key,
    read_public_key_text,
    sign_key,
)
from officestatus_server.errors import InvalidInput, KeyRejected
from tests.support import Vendor

INSTALLATION = "inst-7f3a"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _sign_payload_text(payload_b64: str, signing: SigningKey) -> str:
    """A key text around any payload spelling, with a valid signature over it."""
    signed = f"OSLK1.{payload_b64}"
    return f"{signed}.{_b64(signing.private_key.sign(signed.encode('ascii')))}"


def _sign_raw(payload: bytes, signing: SigningKey) -> str:
    """A key text carrying arbitrary payload bytes, correctly signed."""
    return _sign_payload_text(_b64(payload), signing)


def _sign_dict(payload: dict[str, Any], signing: SigningKey) -> str:
    return _sign_raw(json.dumps(payload).encode("ascii"), signing)


def _key_of_kind(vendor: Vendor, kind: LicenseKind) -> LicenseKey:
    if kind is LicenseKind.EVALUATION_EXTENSION:
        return vendor.key(
            0, kind=kind, installation_id=INSTALLATION, evaluation_until=date(2026, 12, 20)
        )
    return vendor.key(25, kind=kind, upgrades="L-5X-0001", customer="Müller & Söhne GmbH")


# --- round trips ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(LicenseKind), ids=[k.value for k in LicenseKind])
def test_sign_and_read_round_trip_for_every_kind(vendor: Vendor, kind: LicenseKind) -> None:
    key = _key_of_kind(vendor, kind)
    text = sign_key(key, vendor.signing.private_key)

    read, compact = read_key(text, vendor.trust)

    assert read == key
    assert compact == text
    assert text.startswith("OSLK1.")
    assert text.isascii()


def _as_is(text: str) -> str:
    return text


def _wrapped_crlf_indented(text: str) -> str:
    lines = [text[i : i + 40] for i in range(0, len(text), 40)]
    return "\r\n".join("    " + line for line in lines)


def _armoured_in_mail(text: str) -> str:
    indented = armour(text, width=48).replace("\n", "\n\t  ")
    return f"\n\n  {indented}\n\n"


def _broken_mid_line(text: str) -> str:
    third = len(text) // 3
    return f" {text[:third]}\n\n {text[third : 2 * third]} \t\n{text[2 * third :]}\n  "


def _armoured_narrow(text: str) -> str:
    return armour(text, width=10)


def _armour_on_one_line(text: str) -> str:
    return f"{ARMOUR_BEGIN} {text} {ARMOUR_END}"


PASTED = [
    pytest.param(_as_is, id="compact"),
    pytest.param(armour, id="armoured"),
    pytest.param(_armoured_narrow, id="armoured-width-10"),
    pytest.param(_armour_on_one_line, id="armour-on-one-line"),
    pytest.param(_wrapped_crlf_indented, id="mail-wrapped-crlf-indented"),
    pytest.param(_armoured_in_mail, id="armoured-indented-in-mail"),
    pytest.param(_broken_mid_line, id="blank-lines-and-tabs"),
]


@pytest.mark.parametrize("paste", PASTED)
def test_key_reads_however_it_was_pasted(vendor: Vendor, paste: Any) -> None:
    key = vendor.key(25)
    text = sign_key(key, vendor.signing.private_key)

    read, compact = read_key(paste(text), vendor.trust)

    assert read == key
    assert compact == text


def test_vendor_issue_gives_armoured_text_that_reads(vendor: Vendor) -> None:
    issued = vendor.issue(10, license_id="L-ISSUED-1")

    assert issued.splitlines()[0] == ARMOUR_BEGIN
    assert issued.splitlines()[-1] == ARMOUR_END
    key, _ = read_key(issued, vendor.trust)
    assert (key.license_id, key.seats, key.major_version) == ("L-ISSUED-1", 10, 6)


def test_normalise_removes_armour_and_blanks() -> None:
    assert normalise_key_text(f"{ARMOUR_BEGIN}\n OSLK1.a\r\n.b \n{ARMOUR_END}\n") == "OSLK1.a.b"


# --- tampering --------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF], ids=["xor-0x01", "xor-0x80", "xor-0xff"])
@pytest.mark.parametrize(
    "kind",
    [LicenseKind.PURCHASED, LicenseKind.EVALUATION_EXTENSION],
    ids=["purchased", "extension"],
)
def test_every_single_byte_change_is_refused(vendor: Vendor, kind: LicenseKind, mask: int) -> None:
    text = sign_key(_key_of_kind(vendor, kind), vendor.signing.private_key).encode("ascii")
    accepted: list[tuple[int, str]] = []
    crashed: list[tuple[int, str]] = []

    for position in range(len(text)):
        damaged = bytearray(text)
        damaged[position] ^= mask
        try:
            read_key(bytes(damaged).decode("latin-1"), vendor.trust)
        except KeyRejected:
            continue
        except Exception as exc:  # anything but a clean refusal is a failure
            crashed.append((position, repr(exc)))
        else:
            accepted.append((position, chr(damaged[position])))

    assert accepted == []
    assert crashed == []


def test_single_byte_changes_in_armoured_text_never_yield_another_key(vendor: Vendor) -> None:
    # Blanks may turn into other blanks (and are ignored); anything accepted must be the
    # very same key.
    key = vendor.key(25)
    text = armour(sign_key(key, vendor.signing.private_key)).encode("ascii")
    for mask in (0x01, 0x80, 0xFF):
        for position in range(len(text)):
            damaged = bytearray(text)
            damaged[position] ^= mask
            try:
                read, _ = read_key(bytes(damaged).decode("latin-1"), vendor.trust)
            except KeyRejected:
                continue
            assert read == key, (mask, position)


def test_unknown_signing_key_id_is_refused(vendor: Vendor) -> None:
    stranger = SigningKey.generate("someone-else")
    key = dataclasses.replace(vendor.key(25), signing_key_id="someone-else")

    with pytest.raises(KeyRejected) as caught:
        read_key(sign_key(key, stranger.private_key), vendor.trust)

    assert caught.value.reason == "KEY_UNKNOWN_SIGNER"
    assert "someone-else" in caught.value.message


def test_empty_trust_store_knows_no_signer(vendor: Vendor) -> None:
    with pytest.raises(KeyRejected) as caught:
        read_key(vendor.issue(25), TrustStore())
    assert caught.value.reason == "KEY_UNKNOWN_SIGNER"


def test_other_private_key_claiming_the_trusted_id_is_a_bad_signature(vendor: Vendor) -> None:
    impostor = SigningKey.generate(vendor.signing.key_id)
    key = vendor.key(1000)

    with pytest.raises(KeyRejected) as caught:
        read_key(sign_key(key, impostor.private_key), vendor.trust)

    assert caught.value.reason == "KEY_BAD_SIGNATURE"


def test_signature_from_another_key_text_is_a_bad_signature(vendor: Vendor) -> None:
    small = sign_key(vendor.key(1, license_id="L-SMALL"), vendor.signing.private_key)
    large = sign_key(vendor.key(900, license_id="L-LARGE"), vendor.signing.private_key)
    spliced = ".".join(large.split(".")[:2] + small.split(".")[2:])

    with pytest.raises(KeyRejected) as caught:
        read_key(spliced, vendor.trust)

    assert caught.value.reason == "KEY_BAD_SIGNATURE"


def test_key_for_another_product_is_refused(vendor: Vendor) -> None:
    key = dataclasses.replace(vendor.key(25), product="other")

    with pytest.raises(KeyRejected) as caught:
        read_key(sign_key(key, vendor.signing.private_key), vendor.trust)

    assert caught.value.reason == "KEY_WRONG_PRODUCT"
    assert "'other'" in caught.value.message


# --- malformed texts -----------------------------------------------------------------------


def _noncanonical_last_char(b64: str) -> str:
    """The same bytes spelt with different unused low bits in the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    data = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    for ch in alphabet:
        other = b64[:-1] + ch
        if other != b64 and base64.urlsafe_b64decode(other + "=" * (-len(other) % 4)) == data:
            return other
    raise AssertionError("this spelling has no unused bits")


def _valid_payload(vendor: Vendor) -> dict[str, Any]:
    return vendor.key(25, license_id="L-PAYLOAD").payload()


def _text_empty(vendor: Vendor) -> str:
    return ""


def _text_blanks(vendor: Vendor) -> str:
    return " \n\t \r\n"


def _text_random(vendor: Vendor) -> str:
    return "Please find attached the license for 25 users."


def _text_armour_only(vendor: Vendor) -> str:
    return armour("")


def _text_two_parts(vendor: Vendor) -> str:
    return ".".join(sign_key(vendor.key(25), vendor.signing.private_key).split(".")[:2])


def _text_four_parts(vendor: Vendor) -> str:
    return sign_key(vendor.key(25), vendor.signing.private_key) + ".AAAA"


def _text_other_prefix(vendor: Vendor) -> str:
    return "OSLK2" + sign_key(vendor.key(25), vendor.signing.private_key)[5:]


def _text_lower_prefix(vendor: Vendor) -> str:
    return "oslk1" + sign_key(vendor.key(25), vendor.signing.private_key)[5:]


def _text_padded_base64(vendor: Vendor) -> str:
    _, payload, signature = sign_key(vendor.key(25), vendor.signing.private_key).split(".")
    return f"OSLK1.{payload}.{signature}=="


def _text_standard_base64_alphabet(vendor: Vendor) -> str:
    text = sign_key(vendor.key(25), vendor.signing.private_key)
    return text.replace("-", "+").replace("_", "/") if ("-" in text or "_" in text) else text + "+"


def _text_noncanonical_signature(vendor: Vendor) -> str:
    _, payload, signature = sign_key(vendor.key(25), vendor.signing.private_key).split(".")
    return f"OSLK1.{payload}.{_noncanonical_last_char(signature)}"


def _text_noncanonical_payload_validly_signed(vendor: Vendor) -> str:
    # Pad the JSON with blanks until its base64 has unused bits, then spell those bits
    # differently and sign that spelling: the signature is good, the spelling is not.
    raw = json.dumps(_valid_payload(vendor)).encode("ascii")
    while len(raw) % 3 == 0:
        raw += b" "
    return _sign_payload_text(_noncanonical_last_char(_b64(raw)), vendor.signing)


def _text_truncated_signature(vendor: Vendor) -> str:
    return sign_key(vendor.key(25), vendor.signing.private_key)[:-4]


def _text_too_long(vendor: Vendor) -> str:
    return sign_key(vendor.key(25), vendor.signing.private_key) + " " * MAX_KEY_TEXT


def _signed(payload: bytes) -> Any:
    def build(vendor: Vendor) -> str:
        return _sign_raw(payload, vendor.signing)

    return build


def _signed_without(field: str) -> Any:
    def build(vendor: Vendor) -> str:
        payload = _valid_payload(vendor)
        del payload[field]
        return _sign_dict(payload, vendor.signing)

    return build


def _signed_with(**changes: Any) -> Any:
    def build(vendor: Vendor) -> str:
        return _sign_dict({**_valid_payload(vendor), **changes}, vendor.signing)

    return build


MALFORMED = [
    pytest.param(_text_empty, id="empty"),
    pytest.param(_text_blanks, id="only-blanks"),
    pytest.param(_text_random, id="random-sentence"),
    pytest.param(_text_armour_only, id="armour-without-key"),
    pytest.param(_text_two_parts, id="two-parts"),
    pytest.param(_text_four_parts, id="four-parts"),
    pytest.param(_text_other_prefix, id="prefix-OSLK2"),
    pytest.param(_text_lower_prefix, id="prefix-lowercase"),
    pytest.param(_text_padded_base64, id="base64-padding"),
    pytest.param(_text_standard_base64_alphabet, id="base64-standard-alphabet"),
    pytest.param(_text_noncanonical_signature, id="base64-noncanonical-signature"),
    pytest.param(_text_noncanonical_payload_validly_signed, id="base64-noncanonical-payload"),
    pytest.param(_text_truncated_signature, id="signature-truncated"),
    pytest.param(_text_too_long, id="longer-than-max"),
    pytest.param(_signed(b"this is not json"), id="payload-not-json"),
    pytest.param(_signed(b"\xff\xfe{}"), id="payload-not-utf8"),
    pytest.param(_signed(b"[1, 2, 3]"), id="json-array"),
    pytest.param(_signed(b'"officestatus"'), id="json-string"),
    pytest.param(_signed(b"null"), id="json-null"),
    pytest.param(_signed(b"42"), id="json-number"),
    pytest.param(_signed(b""), id="payload-empty"),
    pytest.param(_signed(b"[" * 2900 + b"]" * 2900), id="json-nested-too-deep"),
    pytest.param(_signed(b'{"a":' * 2900 + b"1" + b"}" * 2900), id="json-object-too-deep"),
    pytest.param(_signed_without("lid"), id="missing-lid"),
    pytest.param(_signed_without("product"), id="missing-product"),
    pytest.param(_signed_without("major"), id="missing-major"),
    pytest.param(_signed_without("seats"), id="missing-seats"),
    pytest.param(_signed_without("kind"), id="missing-kind"),
    pytest.param(_signed_without("customer"), id="missing-customer"),
    pytest.param(_signed_without("purchased"), id="missing-purchased"),
    pytest.param(_signed_without("issued"), id="missing-issued"),
    pytest.param(_signed_with(major="6"), id="major-as-text"),
    pytest.param(_signed_with(seats=True), id="seats-as-bool"),
    pytest.param(_signed_with(seats=2.5), id="seats-fraction"),
    pytest.param(_signed_with(seats=0), id="purchased-zero-seats"),
    pytest.param(_signed_with(seats=-5), id="negative-seats"),
    pytest.param(_signed_with(kind="gift"), id="unknown-kind"),
    pytest.param(_signed_with(purchased="last tuesday"), id="bad-date"),
    pytest.param(_signed_with(issued=20261101), id="date-as-number"),
    pytest.param(_signed_with(lid="L 1"), id="license-id-with-blank"),
    pytest.param(_signed_with(customer=""), id="customer-empty"),
    pytest.param(_signed_with(upgrades=7), id="upgrades-as-number"),
    pytest.param(_signed_with(kind="evaluation-extension", seats=0), id="extension-no-target"),
]


@pytest.mark.parametrize("make", MALFORMED)
def test_malformed_text_is_refused_as_malformed(vendor: Vendor, make: Any) -> None:
    with pytest.raises(KeyRejected) as caught:
        read_key(make(vendor), vendor.trust)

    assert caught.value.reason == "KEY_MALFORMED"
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.message


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(_signed_without("kid"), id="missing-kid"),
        pytest.param(_signed_with(kid=17), id="kid-as-number"),
        pytest.param(_signed_with(kid="kms-2019"), id="kid-not-trusted"),
    ],
)
def test_payload_without_a_trusted_kid_names_the_signer_unknown(vendor: Vendor, make: Any) -> None:
    with pytest.raises(KeyRejected) as caught:
        read_key(make(vendor), vendor.trust)
    assert caught.value.reason == "KEY_UNKNOWN_SIGNER"


@pytest.mark.parametrize(
    "optional",
    ["upgrades", "installation", "evaluation_until"],
)
def test_optional_fields_may_be_missing(vendor: Vendor, optional: str) -> None:
    key, _ = read_key(_signed_without(optional)(vendor), vendor.trust)
    assert key.license_id == "L-PAYLOAD"


def test_decode_unverified_reads_fields_without_trusting_them(vendor: Vendor) -> None:
    stranger = SigningKey.generate("stranger")
    key = dataclasses.replace(vendor.key(7, license_id="L-SHOWN"), signing_key_id="stranger")
    text = sign_key(key, stranger.private_key)

    unverified = decode_unverified(armour(text))

    assert unverified.compact == text
    assert unverified.fields == key.payload()
    assert len(unverified.signature) == 64
    with pytest.raises(KeyRejected) as caught:
        read_key(text, vendor.trust)
    assert caught.value.reason == "KEY_UNKNOWN_SIGNER"


@pytest.mark.parametrize(
    "text", ["", "OSLK1.a", "OSLK1.!!.AA", "OSLK1.W10.AA"], ids=["empty", "two", "alphabet", "list"]
)
def test_decode_unverified_refuses_malformed_text(text: str) -> None:
    with pytest.raises(KeyRejected) as caught:
        decode_unverified(text)
    assert caught.value.reason == "KEY_MALFORMED"


# --- LicenseKey validation -----------------------------------------------------------------


def _base_fields() -> dict[str, Any]:
    return {
        "signing_key_id": "kms-test",
        "license_id": "L-000001",
        "major_version": 6,
        "seats": 25,
        "kind": LicenseKind.PURCHASED,
        "customer": "Acme Ltd",
        "purchase_date": date(2026, 11, 1),
        "issue_date": date(2026, 11, 1),
    }


_EXTENSION = {
    "kind": LicenseKind.EVALUATION_EXTENSION,
    "seats": 0,
    "installation_id": INSTALLATION,
    "evaluation_until": date(2026, 12, 20),
}

INVALID_KEYS = [
    pytest.param({"seats": 0}, "at least one seat", id="purchased-zero-seats"),
    pytest.param({"seats": 0, "kind": LicenseKind.SITE}, "at least one seat", id="site-zero"),
    pytest.param({"seats": 0, "kind": LicenseKind.FREE_PRESS}, "at least one seat", id="free-0"),
    pytest.param({"seats": -1}, "out of range", id="negative-seats"),
    pytest.param({"seats": MAX_SEATS + 1}, "out of range", id="too-many-seats"),
    pytest.param({"major_version": 0}, "major version", id="major-0"),
    pytest.param({"major_version": 100}, "major version", id="major-100"),
    pytest.param({"license_id": ""}, "license id", id="license-id-empty"),
    pytest.param({"license_id": "L 1"}, "license id", id="license-id-blank"),
    pytest.param({"license_id": "L/1"}, "license id", id="license-id-slash"),
    pytest.param({"license_id": "L" * 65}, "license id", id="license-id-65"),
    pytest.param({"license_id": "Lé"}, "license id", id="license-id-non-ascii"),
    pytest.param({"signing_key_id": ""}, "signing key id", id="kid-empty"),
    pytest.param({"signing_key_id": "k id"}, "signing key id", id="kid-blank"),
    pytest.param({"signing_key_id": "k" * 65}, "signing key id", id="kid-65"),
    pytest.param({"upgrades_license_id": "no way"}, "upgraded license id", id="upgrades-bad"),
    pytest.param({"customer": ""}, "customer", id="customer-empty"),
    pytest.param({"customer": "C" * 201}, "customer", id="customer-201"),
    pytest.param({"customer": "Acme\nLtd"}, "control characters", id="customer-newline"),
    pytest.param({"customer": "Acme\x1b[2J"}, "control characters", id="customer-escape"),
    pytest.param({"customer": "Acme\u202e"}, "control characters", id="customer-bidi"),
    pytest.param(
        {**_EXTENSION, "installation_id": None}, "names its installation", id="ext-no-inst"
    ),
    pytest.param(
        {**_EXTENSION, "installation_id": ""}, "names its installation", id="ext-inst-empty"
    ),
    pytest.param({**_EXTENSION, "evaluation_until": None}, "its new end", id="ext-no-end"),
    pytest.param({**_EXTENSION, "seats": 5}, "carries no seats", id="ext-with-seats"),
]


@pytest.mark.parametrize(("changes", "says"), INVALID_KEYS)
def test_license_key_refuses_invalid_content(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(KeyRejected) as caught:
        LicenseKey(**{**_base_fields(), **changes})

    assert caught.value.reason == "KEY_MALFORMED"
    assert says in caught.value.message


VALID_KEYS = [
    pytest.param({}, id="purchased"),
    pytest.param({"seats": 1}, id="one-seat"),
    pytest.param({"seats": MAX_SEATS}, id="max-seats"),
    pytest.param({"major_version": 1}, id="major-1"),
    pytest.param({"major_version": 99}, id="major-99"),
    pytest.param({"license_id": "L" * 64}, id="license-id-64"),
    pytest.param({"license_id": "a.B-9_z"}, id="license-id-all-classes"),
    pytest.param({"customer": "C" * 200}, id="customer-200"),
    pytest.param({"kind": LicenseKind.SITE, "seats": 5000}, id="site"),
    pytest.param({"kind": LicenseKind.FREE_UPGRADE, "upgrades_license_id": "L-5"}, id="upgrade"),
    pytest.param(_EXTENSION, id="extension"),
]


@pytest.mark.parametrize("changes", VALID_KEYS)
def test_license_key_accepts_valid_content(changes: dict[str, Any]) -> None:
    key = LicenseKey(**{**_base_fields(), **changes})
    assert key.product == "officestatus"


@pytest.mark.parametrize(
    ("kind", "carries_seats", "is_free"),
    [
        (LicenseKind.PURCHASED, True, False),
        (LicenseKind.SITE, True, False),
        (LicenseKind.EVALUATION_EXTENSION, False, False),
        (LicenseKind.FREE_PRESS, True, True),
        (LicenseKind.FREE_OFFER, True, True),
        (LicenseKind.FREE_UPGRADE, True, True),
    ],
    ids=lambda v: v.value if isinstance(v, LicenseKind) else None,
)
def test_license_kind_properties(kind: LicenseKind, carries_seats: bool, is_free: bool) -> None:
    assert (kind.carries_seats, kind.is_free) == (carries_seats, is_free)


# --- vendor key files ----------------------------------------------------------------------


def test_private_key_text_round_trip() -> None:
    original = SigningKey.generate("kms-2026")
    text = original.private_text()

    again = SigningKey.from_private_text(text)

    assert again.key_id == "kms-2026"
    assert text.startswith("officestatus-vendor-private-key v1 kms-2026 ")
    assert again.private_text() == text
    assert again.public_text() == original.public_text()


def test_public_key_text_round_trip_verifies_keys(vendor: Vendor) -> None:
    text = vendor.signing.public_text()

    key_id, public = read_public_key_text(text)
    trust = TrustStore.from_public_key_texts([text])

    assert key_id == "kms-test"
    assert public_key_text(key_id, public) == text
    trusted = trust.get("kms-test")
    assert trusted is not None
    assert trusted.public_bytes_raw() == public.public_bytes_raw()
    read, _ = read_key(vendor.issue(3), trust)
    assert read.seats == 3


def test_key_file_texts_tolerate_extra_blanks(vendor: Vendor) -> None:
    header, version, key_id, encoded = vendor.signing.public_text().split()
    key_id_read, _ = read_public_key_text(f"  {header}\t{version}\r\n{key_id}   {encoded}\n\n")
    assert key_id_read == key_id


def test_private_key_file_reads_and_signs() -> None:
    signing = SigningKey.generate("kms-file")
    trust = TrustStore.from_public_key_texts([signing.public_text()])
    again = SigningKey.from_private_text(signing.private_text())
    key = LicenseKey(**{**_base_fields(), "signing_key_id": "kms-file"})

    read, _ = read_key(sign_key(key, again.private_key), trust)

    assert read == key


def _public_parts() -> list[str]:
    return SigningKey.generate("kms-x").public_text().split()


def _damage_public(how: str) -> str:
    header, version, key_id, encoded = _public_parts()
    match how:
        case "empty":
            return ""
        case "no-key":
            return f"{header} {version} {key_id}\n"
        case "extra-part":
            return f"{header} {version} {key_id} {encoded} extra\n"
        case "wrong-header":
            return f"officestatus-vendor-secret-key {version} {key_id} {encoded}\n"
        case "wrong-version":
            return f"{header} v2 {key_id} {encoded}\n"
        case "bad-key-id":
            return f"{header} {version} kms/x {encoded}\n"
        case "truncated-key":
            return f"{header} {version} {key_id} {encoded[:-2]}\n"
        case "padded-key":
            return f"{header} {version} {key_id} {encoded}=\n"
        case "noncanonical-key":
            return f"{header} {version} {key_id} {_noncanonical_last_char(encoded)}\n"
        case "33-bytes":
            return f"{header} {version} {key_id} {_b64(bytes(33))}\n"
        case "standard-alphabet":
            return f"{header} {version} {key_id} {'+' * 43}\n"
        case "private-as-public":
            return SigningKey.generate("kms-x").private_text()
    raise AssertionError(how)


DAMAGED_PUBLIC = [
    "empty",
    "no-key",
    "extra-part",
    "wrong-header",
    "wrong-version",
    "bad-key-id",
    "truncated-key",
    "padded-key",
    "noncanonical-key",
    "33-bytes",
    "standard-alphabet",
    "private-as-public",
]


@pytest.mark.parametrize("how", DAMAGED_PUBLIC)
def test_damaged_public_key_file_is_invalid_input(how: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        read_public_key_text(_damage_public(how))

    assert caught.value.reason == "VENDOR_KEY_FILE_INVALID"
    assert not isinstance(caught.value, KeyRejected)


@pytest.mark.parametrize("how", DAMAGED_PUBLIC)
def test_damaged_public_key_file_fails_the_trust_store(how: str) -> None:
    good = SigningKey.generate("kms-good").public_text()
    with pytest.raises(InvalidInput):
        TrustStore.from_public_key_texts([good, _damage_public(how)])


def _damage_private(how: str) -> str:
    signing = SigningKey.generate("kms-p")
    header, version, key_id, encoded = signing.private_text().split()
    match how:
        case "empty":
            return ""
        case "public-as-private":
            return signing.public_text()
        case "truncated-key":
            return f"{header} {version} {key_id} {encoded[:20]}\n"
        case "bad-key-id":
            return f"{header} {version} {'k' * 65} {encoded}\n"
        case "garbage-key":
            return f"{header} {version} {key_id} not*base64\n"
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how", ["empty", "public-as-private", "truncated-key", "bad-key-id", "garbage-key"]
)
def test_damaged_private_key_file_is_invalid_input(how: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SigningKey.from_private_text(_damage_private(how))
    assert caught.value.reason == "VENDOR_KEY_FILE_INVALID"


@pytest.mark.parametrize("key_id", ["", "has blank", "k" * 65, "kms/1", "ké"])
def test_generating_a_key_with_a_bad_id_is_refused(key_id: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        SigningKey.generate(key_id)
    assert caught.value.reason == "KEY_ID_INVALID"


def test_signing_key_repr_hides_the_private_key() -> None:
    assert "private_key" not in repr(SigningKey.generate("kms-r"))


@pytest.mark.parametrize("cut", range(1, 9))
def test_a_cut_signature_is_malformed_whatever_its_bits(vendor: Vendor, cut: int) -> None:
    # Some cuts leave valid, canonical base64 of a shorter signature: still malformed.
    for _ in range(20):
        text = sign_key(vendor.key(25), vendor.signing.private_key)[:-cut]
        with pytest.raises(KeyRejected) as caught:
            read_key(text, vendor.trust)
        assert caught.value.reason == "KEY_MALFORMED"
