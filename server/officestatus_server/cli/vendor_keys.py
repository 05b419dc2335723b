"""The vendor's keys from their files, and a license key signed and handed out.

`issue`, `extend` and `upgrade` all end in `emit`: sign the key, read it back as a server
would, and print it or write it to a file. The key logic itself is
`officestatus_server.core.keys`; this module adds the files and the terminal.
"""

from __future__ import annotations

import secrets
import sys
from datetime import date

from officestatus_server.cli.vendor_files import read_text, write_text
from officestatus_server.core.keys import (
    LicenseKey,
    SigningKey,
    TrustStore,
    armour,
    check_not_future,
    read_key,
    sign_key,
)


def load_signing_key(path: str) -> SigningKey:
    """The vendor private key in the file at `path`."""
    return SigningKey.from_private_text(read_text(path, "signing key"))


def load_trust_store(paths: list[str]) -> TrustStore:
    """The vendor public keys in the files at `paths`, to verify keys against."""
    return TrustStore.from_public_key_texts([read_text(path, "public key") for path in paths])


def new_license_id() -> str:
    """A fresh license id: 48 random bits, so a clash is vanishingly unlikely."""
    return "L-" + secrets.token_hex(6).upper()


def emit(key: LicenseKey, signing: SigningKey, out: str | None) -> None:
    """Sign `key`, check it reads back, and print it or write it to `out`."""
    key_text = sign_key(key, signing.private_key)
    # Read the key back exactly as a server would, so that a key a server would refuse
    # never reaches a customer's inbox.
    own = TrustStore({signing.key_id: signing.private_key.public_key()})
    read_key(key_text, own)
    check_not_future(key, date.today())
    armoured = armour(key_text)
    seats = "no seats" if not key.kind.carries_seats else f"{key.seats} seats"
    summary = (
        f"License {key.license_id}: {key.kind.value}, {seats}, OfficeStatus "
        f"{key.major_version}, for {key.customer!r}, signed with {signing.key_id!r}."
    )
    if out is None:
        # Standard output carries only the key, so it can be piped; the summary is for
        # the person at the terminal.
        sys.stdout.write(armoured)
        print(summary, file=sys.stderr)
    else:
        write_text(out, armoured, "license key")
        print(summary)
        print(f"Written to {out}.")


__all__ = ["emit", "load_signing_key", "load_trust_store", "new_license_id"]
