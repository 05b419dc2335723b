"""base64url without padding (RFC 4648, section 5): how license keys and session ids
spell bytes."""

from __future__ import annotations

import binascii

_URL_SAFE = bytes.maketrans(b"+/", b"-_")


def encode(data: bytes) -> str:
    """`data` in base64url, without the "=" padding."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_URL_SAFE).decode()
