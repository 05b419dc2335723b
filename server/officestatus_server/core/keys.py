"""License keys: Ed25519-signed text tokens that survive being pasted into an e-mail.

A key reads ``OSLK1.<payload>.<signature>``: the payload is base64url (no padding) of a
JSON object, the signature base64url of an Ed25519 signature over the ASCII text
``OSLK1.<payload>``. Because the signature covers the text itself, changing any character
of the payload or signature makes the key invalid. Blanks and line breaks are ignored, so
a key wrapped by a mail program still reads, and the whole key may stand between the
``BEGIN``/``END`` armour lines that `armour()` writes.

The server holds only public keys (a `TrustStore`, chosen by the key id in the payload);
the vendor's tools hold the private key and call `sign_key`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from officestatus_server.core import b64url
from officestatus_server.core.names import first_control_character
from officestatus_server.errors import InvalidInput, KeyRejected

PREFIX = "OSLK1"
PRODUCT = "officestatus"
ARMOUR_BEGIN = "-----BEGIN OFFICESTATUS LICENSE KEY-----"
ARMOUR_END = "-----END OFFICESTATUS LICENSE KEY-----"
MAX_KEY_TEXT = 8192
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_LICENSE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
_BLANKS = re.compile(r"\s+")
MAX_SEATS = 1_000_000
SIGNATURE_BYTES = 64  # Ed25519
# Far enough either way for any real key; keeps date arithmetic (support + 1 year,
# evaluation end + 1 day) inside the calendar.
EARLIEST_DATE = date(1990, 1, 1)
LATEST_DATE = date(9000, 12, 31)
# A key is dated on the vendor's day: it may be a day ahead of a server in another time
# zone, never more. A later date is a mistake (or a try at a longer support period).
DATE_TOLERANCE = timedelta(days=1)


class LicenseKind(StrEnum):
    """What a license is; the kind decides how it counts and how it may be upgraded."""

    PURCHASED = "purchased"
    SITE = "site"
    EVALUATION_EXTENSION = "evaluation-extension"
    FREE_PRESS = "free-press"
    FREE_OFFER = "free-offer"
    FREE_UPGRADE = "free-upgrade"
    # 3.x-5.x keys only: a press copy, special offer or free upgrade, not told apart.
    FREE = "free"

    @property
    def carries_seats(self) -> bool:
        """Every kind but an evaluation extension brings seats."""
        return self is not LicenseKind.EVALUATION_EXTENSION

    @property
    def is_free(self) -> bool:
        """Received free: press copy, special offer or free upgrade."""
        return self in _FREE_KINDS


_FREE_KINDS = frozenset(
    {LicenseKind.FREE_PRESS, LicenseKind.FREE_OFFER, LicenseKind.FREE_UPGRADE, LicenseKind.FREE}
)


@dataclass(frozen=True)
class LicenseKey:
    """What a license key says. Build it, sign it with `sign_key`, read it with `read_key`."""

    signing_key_id: str
    license_id: str
    major_version: int
    seats: int
    kind: LicenseKind
    customer: str
    purchase_date: date
    issue_date: date
    product: str = PRODUCT
    upgrades_license_id: str | None = None
    installation_id: str | None = None
    evaluation_until: date | None = None

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise KeyRejected(
                f"The license key is not valid: {problems[0]}.", reason="KEY_MALFORMED"
            )
        if self.purchase_date > self.issue_date:
            raise KeyRejected(
                f"The license key is not valid: it says it was purchased on "
                f"{self.purchase_date.isoformat()}, after it was issued on "
                f"{self.issue_date.isoformat()}. Ask Key Metric Software for a corrected key.",
                reason="KEY_DATES_INVALID",
            )

    def payload(self) -> dict[str, Any]:
        """The JSON object a key carries."""
        return {
            "kid": self.signing_key_id,
            "lid": self.license_id,
            "product": self.product,
            "major": self.major_version,
            "seats": self.seats,
            "kind": self.kind.value,
            "customer": self.customer,
            "purchased": self.purchase_date.isoformat(),
            "issued": self.issue_date.isoformat(),
            "upgrades": self.upgrades_license_id,
            "installation": self.installation_id,
            "evaluation_until": (
                self.evaluation_until.isoformat() if self.evaluation_until else None
            ),
        }


def _problems(key: LicenseKey) -> list[str]:
    problems: list[str] = []
    if not _KEY_ID.match(key.signing_key_id):
        problems.append("the signing key id is not valid")
    if not _LICENSE_ID.match(key.license_id):
        problems.append("the license id is not valid")
    if not 1 <= key.major_version <= 99:
        problems.append("the major version is out of range")
    if not 0 <= key.seats <= MAX_SEATS:
        problems.append("the number of seats is out of range")
    if key.kind.carries_seats and key.seats < 1:
        problems.append("a license must carry at least one seat")
    if key.kind is LicenseKind.EVALUATION_EXTENSION:
        if key.seats != 0:
            problems.append("an evaluation extension carries no seats")
        if not key.installation_id or key.evaluation_until is None:
            problems.append("an evaluation extension names its installation and its new end")
    if not 0 < len(key.customer) <= 200:
        problems.append("the customer name is empty or too long")
    elif first_control_character(key.customer) is not None:
        # Shown on every server that installs the key: no line breaks or escapes.
        problems.append("the customer name contains control characters")
    dates = [key.purchase_date, key.issue_date]
    if key.evaluation_until is not None:
        dates.append(key.evaluation_until)
    if any(not EARLIEST_DATE <= d <= LATEST_DATE for d in dates):
        problems.append(
            f"its dates must lie between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}"
        )
    if key.upgrades_license_id is not None and not _LICENSE_ID.match(key.upgrades_license_id):
        problems.append("the upgraded license id is not valid")
    return problems


def check_not_future(key: LicenseKey, today: date) -> None:
    """Refuse a key dated more than a day after `today` (the installing server's date, or
    the vendor's when issuing). Raises KeyRejected (KEY_DATED_IN_FUTURE)."""
    latest = max(key.purchase_date, key.issue_date)
    if latest > today + DATE_TOLERANCE:
        raise KeyRejected(
            f"License {key.license_id} is dated {latest.isoformat()}, more than a day after "
            f"today ({today.isoformat()}): a key cannot be issued in the future. Check this "
            "computer's date; if it is right, ask Key Metric Software for a correctly dated "
            "key.",
            reason="KEY_DATED_IN_FUTURE",
        )


@dataclass(frozen=True)
class TrustedKey:
    """A trusted vendor public key, and the file it was read from."""

    key_id: str
    # SHA-256 of the raw 32-byte public key, hex: the same for the same key in any file.
    fingerprint: str
    # The file, as the server was given it or found it.
    source: str
    # Its path inside the server's data directory ("vendor-keys/kms.pub"), which a
    # backup includes; None for a file elsewhere.
    data_dir_name: str | None
    text: str


class TrustStore:
    """The vendor public keys a server trusts, by key id (with where each came from)."""

    def __init__(
        self,
        keys: Mapping[str, Ed25519PublicKey] | None = None,
        entries: Iterable[TrustedKey] = (),
    ) -> None:
        self._keys: dict[str, Ed25519PublicKey] = dict(keys or {})
        self.entries: tuple[TrustedKey, ...] = tuple(entries)

    def identities(self) -> frozenset[tuple[str, str]]:
        """(key id, fingerprint) of every key: two stores trust the same keys when equal."""
        return frozenset(
            (key_id, hashlib.sha256(key.public_bytes_raw()).hexdigest())
            for key_id, key in self._keys.items()
        )

    @classmethod
    def from_key_files(cls, files: Iterable[tuple[str, str | None, str]]) -> TrustStore:
        """Build from public key files: (source, name in the data directory or None,
        text) each; a file that is not a public key file is refused, naming it. A key id
        given twice: the later file's key is trusted."""
        keys: dict[str, Ed25519PublicKey] = {}
        entries: dict[str, TrustedKey] = {}
        for source, data_dir_name, text in files:
            try:
                key_id, key = read_public_key_text(text)
            except InvalidInput as exc:
                raise InvalidInput(f"{source}: {exc.message}", reason=exc.reason) from exc
            keys[key_id] = key
            fingerprint = hashlib.sha256(key.public_bytes_raw()).hexdigest()
            entries[key_id] = TrustedKey(key_id, fingerprint, source, data_dir_name, text)
        return cls(keys, entries.values())

    def get(self, key_id: str) -> Ed25519PublicKey | None:
        """The public key with that id, if trusted."""
        return self._keys.get(key_id)

    @classmethod
    def from_public_key_texts(cls, texts: Iterable[str]) -> TrustStore:
        """Build from public key files' texts (see `public_key_text`)."""
        keys: dict[str, Ed25519PublicKey] = {}
        for text in texts:
            key_id, key = read_public_key_text(text)
            keys[key_id] = key
        return cls(keys)


def _b64decode(text: str, what: str) -> bytes:
    """Strict base64url: only the alphabet, and only the one canonical spelling."""
    if not _B64URL.match(text):
        raise KeyRejected(
            f"The license key is damaged: its {what} contains characters a key never has. "
            "Paste the whole key exactly as the vendor sent it.",
            reason="KEY_MALFORMED",
        )
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        data = None
    if data is None or b64url.encode(data) != text:
        raise KeyRejected(
            f"The license key is damaged: its {what} is not complete. "
            "Paste the whole key exactly as the vendor sent it.",
            reason="KEY_MALFORMED",
        )
    return data


def armour(key_text: str, width: int = 64) -> str:
    """The key between BEGIN/END lines, wrapped to `width` characters, for an e-mail."""
    lines = [key_text[i : i + width] for i in range(0, len(key_text), width)]
    return "\n".join([ARMOUR_BEGIN, *lines, ARMOUR_END]) + "\n"


def normalise_key_text(text: str) -> str:
    """The key as one line: armour, blanks and line breaks removed."""
    if len(text) > MAX_KEY_TEXT:
        raise KeyRejected(
            f"That is not a license key: it is {len(text)} characters long, and a key is "
            f"at most {MAX_KEY_TEXT}.",
            reason="KEY_MALFORMED",
        )
    body = text.replace(ARMOUR_BEGIN, "").replace(ARMOUR_END, "")
    return _BLANKS.sub("", body)


def sign_key(key: LicenseKey, private_key: Ed25519PrivateKey) -> str:
    """The key text for `key`, signed with the vendor's private key."""
    payload = json.dumps(key.payload(), sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    signed = f"{PREFIX}.{b64url.encode(payload.encode('ascii'))}"
    return f"{signed}.{b64url.encode(private_key.sign(signed.encode('ascii')))}"


@dataclass(frozen=True)
class UnverifiedKey:
    """A key's parts and fields, read but NOT verified: believe nothing here yet."""

    compact: str
    payload_b64: str
    signature: bytes
    fields: dict[str, Any]


def decode_unverified(text: str) -> UnverifiedKey:
    """Split and decode a key without checking its signature (for display and for
    `read_key`, which checks it). Raises KeyRejected (KEY_MALFORMED)."""
    compact = normalise_key_text(text)
    parts = compact.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise KeyRejected(
            "That is not an OfficeStatus license key: a key starts with "
            f"'{PREFIX}.' and has three parts separated by dots.",
            reason="KEY_MALFORMED",
        )
    _, payload_b64, signature_b64 = parts
    payload_bytes = _b64decode(payload_b64, "content")
    signature = _b64decode(signature_b64, "signature")
    if len(signature) != SIGNATURE_BYTES:
        raise KeyRejected(
            "The license key is damaged: its signature is not complete. Paste the whole key "
            "exactly as the vendor sent it.",
            reason="KEY_MALFORMED",
        )
    try:
        raw = json.loads(payload_bytes.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raw = None
    if not isinstance(raw, dict):
        raise KeyRejected(
            "The license key is damaged: its content cannot be read.", reason="KEY_MALFORMED"
        )
    return UnverifiedKey(compact, payload_b64, signature, raw)


def read_key(text: str, trust: TrustStore) -> tuple[LicenseKey, str]:
    """Verify and decode a key; returns it with its normalised text.

    Raises KeyRejected with reason KEY_MALFORMED, KEY_UNKNOWN_SIGNER, KEY_BAD_SIGNATURE
    or KEY_WRONG_PRODUCT. The signature is checked before anything in the payload is
    believed, except the key id needed to find the public key.
    """
    unverified = decode_unverified(text)
    raw, payload_b64, signature = unverified.fields, unverified.payload_b64, unverified.signature
    compact = unverified.compact
    key_id = raw.get("kid")
    public = trust.get(key_id) if isinstance(key_id, str) else None
    if public is None:
        raise KeyRejected(
            f"The license key was signed with the key {str(key_id)[:64]!r}, which this server "
            "does not trust. Check that the key comes from Key Metric Software, and put the "
            "vendor's public key file in vendor-keys/ in the server's data directory (read "
            "again at the next install: no restart is needed).",
            reason="KEY_UNKNOWN_SIGNER",
        )
    try:
        public.verify(signature, f"{PREFIX}.{payload_b64}".encode("ascii"))
    except InvalidSignature:
        raise KeyRejected(
            "The license key's signature does not match its content: it was altered or "
            "damaged. Paste the key exactly as the vendor sent it.",
            reason="KEY_BAD_SIGNATURE",
        ) from None
    key = _from_payload(raw)
    if key.product != PRODUCT:
        raise KeyRejected(
            f"This is a license for {key.product!r}, not for OfficeStatus.",
            reason="KEY_WRONG_PRODUCT",
        )
    return key, compact


def _from_payload(raw: dict[str, Any]) -> LicenseKey:
    try:
        until = raw.get("evaluation_until")
        return LicenseKey(
            signing_key_id=_str(raw["kid"]),
            license_id=_str(raw["lid"]),
            product=_str(raw["product"]),
            major_version=_int(raw["major"]),
            seats=_int(raw["seats"]),
            kind=LicenseKind(raw["kind"]),
            customer=_str(raw["customer"]),
            purchase_date=date.fromisoformat(_str(raw["purchased"])),
            issue_date=date.fromisoformat(_str(raw["issued"])),
            upgrades_license_id=_opt_str(raw.get("upgrades")),
            installation_id=_opt_str(raw.get("installation")),
            evaluation_until=date.fromisoformat(_str(until)) if until is not None else None,
        )
    except (KeyError, TypeError, ValueError):
        # A KeyRejected from the key's own checks is none of these, and passes as it is.
        raise KeyRejected(
            "The license key is signed but its content is incomplete; ask the vendor for a "
            "new key.",
            reason="KEY_MALFORMED",
        ) from None


def _str(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _opt_str(value: object) -> str | None:
    return None if value is None else _str(value)


def _int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("expected a whole number")
    return value


# --- vendor key files -----------------------------------------------------------------

_PUBLIC_HEADER = "officestatus-vendor-public-key v1"
_PRIVATE_HEADER = "officestatus-vendor-private-key v1"


@dataclass(frozen=True)
class SigningKey:
    """The vendor's private signing key with its id."""

    key_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        """A new random key pair."""
        if not _KEY_ID.match(key_id):
            raise InvalidInput(
                "A key id has 1 to 64 letters, digits, dots, dashes or underscores.",
                reason="KEY_ID_INVALID",
            )
        return cls(key_id, Ed25519PrivateKey.generate())

    def private_text(self) -> str:
        """The private key file's text; keep it secret."""
        raw = self.private_key.private_bytes_raw()
        return f"{_PRIVATE_HEADER} {self.key_id} {b64url.encode(raw)}\n"

    def public_text(self) -> str:
        """The public key file's text, for the servers' trust store."""
        return public_key_text(self.key_id, self.private_key.public_key())

    @classmethod
    def from_private_text(cls, text: str) -> SigningKey:
        """Read a private key file's text."""
        key_id, raw = _read_key_file(text, _PRIVATE_HEADER, "private")
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(raw))


def public_key_text(key_id: str, key: Ed25519PublicKey) -> str:
    """A public key file's text: header, key id, base64url of the raw 32 bytes."""
    return f"{_PUBLIC_HEADER} {key_id} {b64url.encode(key.public_bytes_raw())}\n"


def read_public_key_text(text: str) -> tuple[str, Ed25519PublicKey]:
    """Read a public key file's text."""
    key_id, raw = _read_key_file(text, _PUBLIC_HEADER, "public")
    return key_id, Ed25519PublicKey.from_public_bytes(raw)


def _read_key_file(text: str, header: str, what: str) -> tuple[str, bytes]:
    parts = text.split()
    expected = header.split()
    if len(parts) != len(expected) + 2 or parts[: len(expected)] != expected:
        raise InvalidInput(
            f"That is not an OfficeStatus vendor {what} key file: it should read "
            f"'{header} <key id> <key>'.",
            reason="VENDOR_KEY_FILE_INVALID",
        )
    key_id, encoded = parts[-2], parts[-1]
    if not _KEY_ID.match(key_id):
        raise InvalidInput(f"The {what} key file has an invalid key id.", "VENDOR_KEY_FILE_INVALID")
    try:
        raw = _b64decode(encoded, f"{what} key")
    except KeyRejected:
        raw = b""
    if len(raw) != 32:
        raise InvalidInput(f"The {what} key file is damaged.", reason="VENDOR_KEY_FILE_INVALID")
    return key_id, raw
