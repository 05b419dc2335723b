"""The license keys of the 3.x, 4.x and 5.x releases: ``OSK-<payload>-<signature>``.

The payload is base32 (RFC 4648, upper case, no padding) of UTF-8 text: ``name=value``
fields joined by ``;`` in a fixed order, ``%``, ``;`` and ``=`` escaped as ``%25``,
``%3B`` and ``%3D``. The signature is base32 of an Ed25519 signature, by the vendor key
whose id is ``kid``, over the payload's UTF-8 bytes (the text, not its base32). The
format is the released one; nothing here may change it.

A legacy key proves a purchase for the upgrade policy and is carried by a takeover as an
installed license of its own major: it is read into the same `LicenseKey` as a 6.x key,
so it counts (or not) by the same rules.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date
from typing import Any

from cryptography.exceptions import InvalidSignature

from officestatus_server.core.keys import (
    PRODUCT,
    LicenseKey,
    LicenseKind,
    TrustStore,
    decode_unverified,
    normalise_key_text,
    read_key,
)
from officestatus_server.errors import KeyRejected

PREFIX = "OSK-"
LEGACY_PRODUCT = "OfficeStatus"
# The fields in their released order: (name, required).
_FIELDS = (
    "fmt",
    "kid",
    "id",
    "product",
    "major",
    "kind",
    "seats",
    "customer",
    "purchased",
    "issued",
)
_EXTENSION_FIELDS = ("installation", "until")
_KINDS = {
    "purchased": LicenseKind.PURCHASED,
    "site": LicenseKind.SITE,
    "free": LicenseKind.FREE,
    "extension": LicenseKind.EVALUATION_EXTENSION,
}
_BASE32 = re.compile(r"^[A-Z2-7]+$")
_ESCAPES = {"%25": "%", "%3B": ";", "%3D": "="}
_ESCAPE = re.compile(r"%(25|3B|3D)")


def is_legacy(compact: str) -> bool:
    """Whether a key's one-line text is in the 3.x-5.x format."""
    return compact.startswith(PREFIX)


def _malformed(what: str) -> KeyRejected:
    return KeyRejected(
        f"The 3.x-5.x license key is damaged: {what}. Paste the whole key exactly as it "
        "was installed.",
        reason="KEY_MALFORMED",
    )


def _base32(text: str, what: str) -> bytes:
    if not text or not _BASE32.match(text):
        raise _malformed(f"its {what} is not base32")
    try:
        data = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise _malformed(f"its {what} is not complete") from None
    if base64.b32encode(data).decode("ascii").rstrip("=") != text:
        raise _malformed(f"its {what} is not complete")
    return data


def _unescape(value: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPES[m.group(0)], value)


def _fields(payload: bytes) -> dict[str, str]:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("its content is not text") from None
    pairs: list[tuple[str, str]] = []
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if not sep:
            raise _malformed(f"the field {name[:20]!r} has no value")
        pairs.append((name, _unescape(value)))
    names = [n for n, _ in pairs]
    expected = list(_FIELDS)
    if names[: len(expected)] != expected:
        raise _malformed("its fields are not those of a 3.x-5.x key")
    rest = names[len(expected) :]
    if dict(pairs).get("kind") == "extension":
        if rest[:2] != list(_EXTENSION_FIELDS):
            raise _malformed("an extension key lacks its installation and last day")
        rest = rest[2:]
    if rest not in ([], ["upgrades"]):
        raise _malformed("it has fields a 3.x-5.x key never has")
    return dict(pairs)


def read_any_key(text: str, trust: TrustStore) -> tuple[LicenseKey, str]:
    """Verify and read a key of either format, a 6.x ``OSLK1.`` key or a 3.x-5.x ``OSK-``
    key; returns it with its normalised one-line text (what is stored and sent on).

    The one entry point wherever a key may be of an older release: installing, verifying
    a stored key at every start, the upgrade preview and the vendor's quote. Raises
    KeyRejected as `read_key` and `read_legacy_key` do.
    """
    compact = normalise_key_text(text)
    if is_legacy(compact):
        return read_legacy_key(compact, trust), compact
    return read_key(compact, trust)


def unverified_fields(text: str) -> dict[str, Any]:
    """A key's fields, read but NOT verified, named as in a 6.x key's payload (``lid``,
    ``major``, ``seats``, ``kind``, ``customer``, ``purchased``), for saying what a key that
    does not verify claims to be. Empty when not even that can be read."""
    try:
        compact = normalise_key_text(text)
        if not is_legacy(compact):
            return decode_unverified(compact).fields
        payload_b32, _, _ = compact[len(PREFIX) :].partition("-")
        fields = _fields(_base32(payload_b32, "content"))
    except KeyRejected:
        return {}
    claimed: dict[str, Any] = {
        "kid": fields["kid"],
        "lid": fields["id"],
        "kind": _KINDS[fields["kind"]].value if fields["kind"] in _KINDS else fields["kind"],
        "customer": fields["customer"],
        "purchased": fields["purchased"],
    }
    for name in ("major", "seats"):
        if fields[name].isdigit():
            claimed[name] = int(fields[name])
    return claimed


def read_legacy_key(compact: str, trust: TrustStore) -> LicenseKey:
    """Verify and read a 3.x-5.x key (its one-line text). The signature is checked before
    anything in the payload is believed but the signer's key id.

    Raises KeyRejected: KEY_MALFORMED, KEY_UNKNOWN_SIGNER, KEY_BAD_SIGNATURE,
    KEY_WRONG_PRODUCT.
    """
    if not is_legacy(compact):
        raise _malformed("it does not start with 'OSK-'")
    payload_b32, sep, signature_b32 = compact[len(PREFIX) :].partition("-")
    if not sep:
        raise _malformed("it has no signature")
    payload = _base32(payload_b32, "content")
    signature = _base32(signature_b32, "signature")
    if len(signature) != 64:
        raise _malformed("its signature is not complete")
    fields = _fields(payload)
    kid = fields["kid"]
    public = trust.get(kid)
    if public is None:
        raise KeyRejected(
            f"The 3.x-5.x license key was signed with the key {kid[:64]!r}, which this "
            "server does not trust. Add Key Metric Software's public key with that id to "
            "the server's vendor keys.",
            reason="KEY_UNKNOWN_SIGNER",
        )
    try:
        public.verify(signature, payload)
    except InvalidSignature:
        raise KeyRejected(
            "The 3.x-5.x license key's signature does not match its content: it was "
            "altered or damaged.",
            reason="KEY_BAD_SIGNATURE",
        ) from None
    if fields["fmt"] != "1":
        raise _malformed(f"its format {fields['fmt'][:8]!r} is not 1")
    if fields["product"] != LEGACY_PRODUCT:
        raise KeyRejected(
            f"This is a license for {fields['product'][:64]!r}, not for OfficeStatus.",
            reason="KEY_WRONG_PRODUCT",
        )
    kind = _KINDS.get(fields["kind"])
    if kind is None:
        raise _malformed(f"its kind {fields['kind'][:20]!r} is not one of the releases'")
    try:
        major, seats = int(fields["major"]), int(fields["seats"])
        purchased = date.fromisoformat(fields["purchased"])
        issued = date.fromisoformat(fields["issued"])
        until = date.fromisoformat(fields["until"]) if "until" in fields else None
    except ValueError:
        raise _malformed("a number or date in it cannot be read") from None
    if major not in (3, 4, 5):
        raise _malformed(f"its major release {major} is not 3, 4 or 5")
    return LicenseKey(
        signing_key_id=kid,
        license_id=fields["id"],
        product=PRODUCT,
        major_version=major,
        seats=seats,
        kind=kind,
        customer=fields["customer"],
        purchase_date=purchased,
        issue_date=issued,
        upgrades_license_id=fields.get("upgrades"),
        installation_id=fields.get("installation"),
        evaluation_until=until,
    )
