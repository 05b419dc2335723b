"""The vendor tool's command line: its exit statuses, argument types and shared options.

Every `officestatus-vendor` command takes its dates, numbers and common options through
here, so that they read and are explained the same way everywhere. This module knows no
command and imports nothing of the other vendor modules.
"""

from __future__ import annotations

import argparse
import re
from datetime import date

from officestatus_server.core.versions import SERVER_MAJOR

PROG = "officestatus-vendor"

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# date.fromisoformat also takes "20260301" and week dates; the help promises YYYY-MM-DD,
# so accept only that and nothing a reader of the command line could misread.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def iso_date(text: str) -> date:
    """An argparse type: a YYYY-MM-DD date, or a usage error that says so."""
    try:
        if _ISO_DATE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD")


def whole_number(text: str) -> int:
    """An argparse type: a whole number (ranges are the key code's to judge)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def add_signing_key(parser: argparse.ArgumentParser) -> None:
    """--signing-key FILE, required: the commands that issue keys sign with it."""
    parser.add_argument(
        "--signing-key", required=True, metavar="FILE", help="the vendor private key file"
    )


def add_customer(parser: argparse.ArgumentParser) -> None:
    """--customer NAME, required."""
    parser.add_argument(
        "--customer", required=True, metavar="NAME", help="the customer's name, as on the key"
    )


def add_major(parser: argparse.ArgumentParser) -> None:
    """--major N, by default this server's major version."""
    parser.add_argument(
        "--major",
        type=whole_number,
        default=SERVER_MAJOR,
        metavar="N",
        help="the OfficeStatus major version the key is for (default: %(default)s)",
    )


def add_license_id(parser: argparse.ArgumentParser) -> None:
    """--license-id ID, by default a new random one."""
    parser.add_argument(
        "--license-id",
        metavar="ID",
        help="the license's id (default: a new random one, L- and 12 hex digits)",
    )


def add_out(parser: argparse.ArgumentParser) -> None:
    """--out FILE, by default standard output."""
    parser.add_argument(
        "--out", metavar="FILE", help="write the key to FILE instead of standard output"
    )


__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "add_customer",
    "add_license_id",
    "add_major",
    "add_out",
    "add_signing_key",
    "iso_date",
    "whole_number",
]
