"""officestatus-vendor: Key Metric Software's tool to make signing keys and issue license keys.

    officestatus-vendor keygen --key-id ID --out-dir DIR
    officestatus-vendor issue --signing-key FILE --seats N --customer NAME [--kind KIND]
        [--major N] [--license-id ID] [--purchase-date DATE] [--issue-date DATE]
        [--upgrades LICENSE_ID] [--out FILE]
    officestatus-vendor extend --signing-key FILE --installation-id ID --until DATE
        --customer NAME [--license-id ID] [--major N] [--out FILE]
    officestatus-vendor inspect [FILE | -] [--trust PUBFILE ...] [--json]
    officestatus-vendor quote | upgrade | price   (see cli/vendor_upgrade.py)

All key logic lives in `officestatus_server.core.keys`; this module only reads arguments
and files and prints. An expected failure prints ``error: <message> (<REASON>)`` on
stderr and exits 1; a usage error exits 2 (argparse's convention).

The tool's modules import one way only, from the commands down to their helpers:

    vendor_main       keygen, issue, extend, inspect; the parser and main()
    vendor_upgrade    quote, upgrade, price (the documents: core/upgrade_documents.py)
    vendor_keys       the vendor's key files; a key signed, checked and handed out
    vendor_args       exit statuses, argument types, the options commands share
    vendor_files      reading and writing files, each failure a refusal with a reason
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from officestatus_server import __version__
from officestatus_server.cli.vendor_args import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    add_customer,
    add_license_id,
    add_major,
    add_out,
    add_signing_key,
    iso_date,
    whole_number,
)
from officestatus_server.cli.vendor_files import create_new_file, read_text
from officestatus_server.cli.vendor_keys import (
    emit,
    load_signing_key,
    load_trust_store,
    new_license_id,
)
from officestatus_server.cli.vendor_upgrade import add_commands
from officestatus_server.core.keys import (
    LicenseKey,
    LicenseKind,
    SigningKey,
    decode_unverified,
    read_key,
)
from officestatus_server.core.names import first_control_character
from officestatus_server.errors import InvalidInput, KeyRejected, LicenseServerError

# `issue` makes every kind but the evaluation extension, which needs other fields (an
# installation and an end date, no seats) and so has its own command, `extend`, and but
# "free", which only the 3.x-5.x releases issued.
_ISSUE_KINDS = [
    k.value for k in LicenseKind if k not in (LicenseKind.EVALUATION_EXTENSION, LicenseKind.FREE)
]

# The payload fields in the order `inspect` shows them, with their labels.
_FIELD_LABELS = (
    ("lid", "license id"),
    ("kind", "kind"),
    ("product", "product"),
    ("major", "major version"),
    ("seats", "seats"),
    ("customer", "customer"),
    ("purchased", "purchase date"),
    ("issued", "issue date"),
    ("upgrades", "upgrades license"),
    ("installation", "installation id"),
    ("evaluation_until", "evaluation until"),
    ("kid", "signing key id"),
)

_Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 done, 1 refused, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits by itself on --help/--version (0) and on usage errors (2); turn
        # that back into a return value so that main() can be called in-process.
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: _Handler = args.handler
    try:
        return handler(args)
    except LicenseServerError as exc:
        # Every refusal the key code makes carries a sentence and a reason code; print
        # both and no traceback, since these are the user's mistakes, not bugs.
        print(f"error: {exc.message} ({exc.reason})", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all the commands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Make vendor signing keys and issue OfficeStatus license keys.",
        epilog=f"Run '{PROG} COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    keygen = commands.add_parser(
        "keygen",
        help="make a new signing key pair",
        description="Make a new signing key pair: DIR/ID.private (owner-only; it issues "
        "licenses, keep it secret) and DIR/ID.pub (for the servers' trust store). "
        "Existing files are never overwritten.",
    )
    keygen.add_argument(
        "--key-id",
        required=True,
        metavar="ID",
        help="the key's id: 1 to 64 letters, digits, '.', '-', '_'",
    )
    keygen.add_argument(
        "--out-dir", required=True, metavar="DIR", help="where to write the two files"
    )
    keygen.set_defaults(handler=_cmd_keygen)

    issue = commands.add_parser(
        "issue",
        help="issue a license key",
        description="Issue a signed license key, armoured for an e-mail.",
    )
    add_signing_key(issue)
    issue.add_argument("--seats", required=True, type=whole_number, help="number of seats")
    add_customer(issue)
    issue.add_argument(
        "--kind",
        choices=_ISSUE_KINDS,
        default=LicenseKind.PURCHASED.value,
        help="what kind of license (default: %(default)s)",
    )
    add_major(issue)
    add_license_id(issue)
    issue.add_argument(
        "--purchase-date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="default: today; not after the issue date",
    )
    issue.add_argument(
        "--issue-date",
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="default: today; at most a day ahead of today",
    )
    issue.add_argument(
        "--upgrades", metavar="LICENSE_ID", help="the id of the license this one upgrades"
    )
    add_out(issue)
    issue.set_defaults(handler=_cmd_issue)

    extend = commands.add_parser(
        "extend",
        help="issue an evaluation extension for one installation",
        description="Issue an evaluation-extension key: it carries no seats and moves the "
        "end of the evaluation of one installation.",
    )
    add_signing_key(extend)
    extend.add_argument(
        "--installation-id",
        required=True,
        metavar="ID",
        help="the installation's id, as its server shows it",
    )
    extend.add_argument(
        "--until",
        required=True,
        type=iso_date,
        metavar="YYYY-MM-DD",
        help="the evaluation's new last day",
    )
    add_customer(extend)
    add_license_id(extend)
    add_major(extend)
    add_out(extend)
    extend.set_defaults(handler=_cmd_extend)

    inspect = commands.add_parser(
        "inspect",
        help="show what a license key says, and verify it",
        description="Decode a license key and show every field. With --trust, verify its "
        "signature against those public keys; without, the fields are shown UNVERIFIED.",
    )
    inspect.add_argument(
        "file",
        nargs="?",
        default="-",
        metavar="FILE",
        help="the key, armoured or not ('-' or nothing: read standard input)",
    )
    inspect.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="PUBFILE",
        help="a vendor public key file to verify against (may be repeated)",
    )
    inspect.add_argument("--json", action="store_true", help="print JSON instead of a table")
    inspect.set_defaults(handler=_cmd_inspect)
    add_commands(commands)
    return parser


# --- commands ---------------------------------------------------------------------------


def _cmd_keygen(args: argparse.Namespace) -> int:
    """Write DIR/ID.private (0600, never overwritten) and DIR/ID.pub."""
    # Generate first: it checks the key id, which also keeps '/' out of the file names.
    signing = SigningKey.generate(args.key_id)
    out_dir = Path(args.out_dir)
    private_path = out_dir / f"{signing.key_id}.private"
    public_path = out_dir / f"{signing.key_id}.pub"
    # A .pub alone next to no .private still belongs to some other key pair; check both
    # before writing either, so a refusal leaves nothing half-done.
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise InvalidInput(
                f"{path} exists already; nothing was written. A key file is never "
                "overwritten: choose another --key-id or --out-dir.",
                reason="FILE_EXISTS",
            )
    try:
        out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(
            f"Cannot create the directory {out_dir}: {exc.strerror or exc}.",
            reason="FILE_UNWRITABLE",
        ) from None
    create_new_file(private_path, signing.private_text(), 0o600, exact_mode=True)
    try:
        create_new_file(public_path, signing.public_text(), 0o644, exact_mode=False)
    except BaseException:
        # A private key without its public half is of no use and must not linger.
        private_path.unlink(missing_ok=True)
        raise
    print(f"Signing key {signing.key_id!r} created.")
    print(f"  private key: {private_path}  (keep it secret: it issues licenses)")
    print(f"  public key:  {public_path}  (add it to the servers' trust store)")
    return EXIT_OK


def _cmd_issue(args: argparse.Namespace) -> int:
    """Sign a license key of one of the seat-carrying kinds."""
    signing = load_signing_key(args.signing_key)
    today = date.today()
    key = LicenseKey(
        signing_key_id=signing.key_id,
        license_id=args.license_id or new_license_id(),
        major_version=args.major,
        seats=args.seats,
        kind=LicenseKind(args.kind),
        customer=_customer(args.customer),
        purchase_date=args.purchase_date or today,
        issue_date=args.issue_date or today,
        upgrades_license_id=args.upgrades,
    )
    emit(key, signing, args.out)
    return EXIT_OK


def _cmd_extend(args: argparse.Namespace) -> int:
    """Sign an evaluation extension bound to one installation."""
    signing = load_signing_key(args.signing_key)
    today = date.today()
    key = LicenseKey(
        signing_key_id=signing.key_id,
        license_id=args.license_id or new_license_id(),
        major_version=args.major,
        seats=0,
        kind=LicenseKind.EVALUATION_EXTENSION,
        customer=_customer(args.customer),
        purchase_date=today,
        issue_date=today,
        installation_id=args.installation_id.strip(),
        evaluation_until=args.until,
    )
    emit(key, signing, args.out)
    return EXIT_OK


def _cmd_inspect(args: argparse.Namespace) -> int:
    """Show every field of a key; verify its signature when given public keys."""
    text = read_text(args.file, "license key")
    unverified = decode_unverified(text)
    compact, fields = unverified.compact, unverified.fields
    rejection: KeyRejected | None = None
    if args.trust:
        trust = load_trust_store(args.trust)
        try:
            read_key(text, trust)
        except KeyRejected as exc:
            rejection = exc
    key_id = fields.get("kid")
    if args.json:
        status = "unchecked" if not args.trust else "rejected" if rejection else "valid"
        report = {
            "signature": {
                "status": status,
                "key_id": key_id,
                "reason": rejection.reason if rejection else None,
                "message": rejection.message if rejection else None,
            },
            "fields": fields,
            "key": compact,
        }
        # ASCII only: the fields are unverified text, and escapes cannot hide anything.
        print(json.dumps(report, indent=2, ensure_ascii=True))
    else:
        if not args.trust:
            print("UNVERIFIED: no --trust given, so the signature was not checked and anyone")
            print("could have written these fields.")
            print()
        width = max(len(label) for _, label in _FIELD_LABELS) + 2
        for name, label in _ordered_fields(fields):
            print(f"{label + ':':<{width}}{_show(fields[name])}")
        print()
        if not args.trust:
            print("signature: not checked (pass --trust PUBFILE to verify it)")
        elif rejection is not None:
            print(f"signature: REJECTED ({rejection.reason}); the fields above are unverified")
        else:
            print(f"signature: valid (key id {key_id})")
    if rejection is not None:
        print(f"error: {rejection.message} ({rejection.reason})", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


# --- helpers ----------------------------------------------------------------------------


def _customer(text: str) -> str:
    """The customer name as it goes into a key: trimmed, and without control characters."""
    name = text.strip()
    # The name is shown on every server that installs the key; a line break or terminal
    # escape in it would garble those screens, and is never what was meant.
    if first_control_character(name) is not None:
        raise InvalidInput(
            f"The customer name {name!r} contains control characters; "
            "give it as one line of plain text.",
            reason="CUSTOMER_INVALID",
        )
    return name


def _ordered_fields(fields: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, label) for every field present: the known ones in order, then any others."""
    known = [(name, label) for name, label in _FIELD_LABELS if name in fields]
    labelled = {name for name, _ in _FIELD_LABELS}
    return known + [(name, name) for name in sorted(fields) if name not in labelled]


def _show(value: object) -> str:
    """A field's value for the table; escapes anything that could garble the terminal."""
    if value is None:
        return "-"
    if isinstance(value, str):
        # An unverified key is anybody's text: never let it print control characters.
        return value if value.isprintable() else ascii(value)
    return json.dumps(value, ensure_ascii=True)
