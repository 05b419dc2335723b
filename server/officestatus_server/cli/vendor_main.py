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
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from officestatus_server import __version__
from officestatus_server.core.keys import (
    LicenseKey,
    LicenseKind,
    SigningKey,
    TrustStore,
    armour,
    check_not_future,
    decode_unverified,
    read_key,
    sign_key,
)
from officestatus_server.core.names import first_control_character
from officestatus_server.core.versions import SERVER_MAJOR
from officestatus_server.errors import InvalidInput, KeyRejected, LicenseServerError

_PROG = "officestatus-vendor"
_EXIT_OK = 0
_EXIT_ERROR = 1
_EXIT_USAGE = 2
_EXIT_INTERRUPTED = 130

# `issue` makes every kind but the evaluation extension, which needs other fields (an
# installation and an end date, no seats) and so has its own command, `extend`, and but
# "free", which only the 3.x-5.x releases issued.
_ISSUE_KINDS = [
    k.value for k in LicenseKind if k not in (LicenseKind.EVALUATION_EXTENSION, LicenseKind.FREE)
]

# date.fromisoformat also takes "20260301" and week dates; the help promises YYYY-MM-DD,
# so accept only that and nothing a reader of the command line could misread.
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

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

# Control and format characters (line breaks, escapes, bidi overrides) and line or
# paragraph separators: none belongs in a customer name, all can garble a screen.

_Handler = Callable[[argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (0 done, 1 refused, 2 usage error)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        # argparse exits by itself on --help/--version (0) and on usage errors (2); turn
        # that back into a return value so that main() can be called in-process.
        return exc.code if isinstance(exc.code, int) else _EXIT_USAGE
    handler: _Handler = args.handler
    try:
        return handler(args)
    except LicenseServerError as exc:
        # Every refusal the key code makes carries a sentence and a reason code; print
        # both and no traceback, since these are the user's mistakes, not bugs.
        print(f"error: {exc.message} ({exc.reason})", file=sys.stderr)
        return _EXIT_ERROR
    except KeyboardInterrupt:
        return _EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all the commands."""
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Make vendor signing keys and issue OfficeStatus license keys.",
        epilog=f"Run '{_PROG} COMMAND --help' for the options of one command.",
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
    _add_signing_key(issue)
    issue.add_argument("--seats", required=True, type=_whole_number, help="number of seats")
    _add_customer(issue)
    issue.add_argument(
        "--kind",
        choices=_ISSUE_KINDS,
        default=LicenseKind.PURCHASED.value,
        help="what kind of license (default: %(default)s)",
    )
    _add_major(issue)
    _add_license_id(issue)
    issue.add_argument(
        "--purchase-date",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="default: today; not after the issue date",
    )
    issue.add_argument(
        "--issue-date",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="default: today; at most a day ahead of today",
    )
    issue.add_argument(
        "--upgrades", metavar="LICENSE_ID", help="the id of the license this one upgrades"
    )
    _add_out(issue)
    issue.set_defaults(handler=_cmd_issue)

    extend = commands.add_parser(
        "extend",
        help="issue an evaluation extension for one installation",
        description="Issue an evaluation-extension key: it carries no seats and moves the "
        "end of the evaluation of one installation.",
    )
    _add_signing_key(extend)
    extend.add_argument(
        "--installation-id",
        required=True,
        metavar="ID",
        help="the installation's id, as its server shows it",
    )
    extend.add_argument(
        "--until",
        required=True,
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="the evaluation's new last day",
    )
    _add_customer(extend)
    _add_license_id(extend)
    _add_major(extend)
    _add_out(extend)
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
    # Imported here: the upgrade commands use this module's helpers.
    from officestatus_server.cli.vendor_upgrade import add_commands

    add_commands(commands)
    return parser


def _add_signing_key(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--signing-key", required=True, metavar="FILE", help="the vendor private key file"
    )


def _add_customer(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--customer", required=True, metavar="NAME", help="the customer's name, as on the key"
    )


def _add_major(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--major",
        type=_whole_number,
        default=SERVER_MAJOR,
        metavar="N",
        help="the OfficeStatus major version the key is for (default: %(default)s)",
    )


def _add_license_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--license-id",
        metavar="ID",
        help="the license's id (default: a new random one, L- and 12 hex digits)",
    )


def _add_out(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", metavar="FILE", help="write the key to FILE instead of standard output"
    )


def _iso_date(text: str) -> date:
    """An argparse type: a YYYY-MM-DD date, or a usage error that says so."""
    try:
        if _ISO_DATE.match(text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD")


def _whole_number(text: str) -> int:
    """An argparse type: a whole number (ranges are the key code's to judge)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


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
    _create_new_file(private_path, signing.private_text(), 0o600, exact_mode=True)
    try:
        _create_new_file(public_path, signing.public_text(), 0o644, exact_mode=False)
    except BaseException:
        # A private key without its public half is of no use and must not linger.
        private_path.unlink(missing_ok=True)
        raise
    print(f"Signing key {signing.key_id!r} created.")
    print(f"  private key: {private_path}  (keep it secret: it issues licenses)")
    print(f"  public key:  {public_path}  (add it to the servers' trust store)")
    return _EXIT_OK


def _cmd_issue(args: argparse.Namespace) -> int:
    """Sign a license key of one of the seat-carrying kinds."""
    signing = _load_signing_key(args.signing_key)
    today = date.today()
    key = LicenseKey(
        signing_key_id=signing.key_id,
        license_id=args.license_id or _new_license_id(),
        major_version=args.major,
        seats=args.seats,
        kind=LicenseKind(args.kind),
        customer=_customer(args.customer),
        purchase_date=args.purchase_date or today,
        issue_date=args.issue_date or today,
        upgrades_license_id=args.upgrades,
    )
    return _emit(key, signing, args.out)


def _cmd_extend(args: argparse.Namespace) -> int:
    """Sign an evaluation extension bound to one installation."""
    signing = _load_signing_key(args.signing_key)
    today = date.today()
    key = LicenseKey(
        signing_key_id=signing.key_id,
        license_id=args.license_id or _new_license_id(),
        major_version=args.major,
        seats=0,
        kind=LicenseKind.EVALUATION_EXTENSION,
        customer=_customer(args.customer),
        purchase_date=today,
        issue_date=today,
        installation_id=args.installation_id.strip(),
        evaluation_until=args.until,
    )
    return _emit(key, signing, args.out)


def _cmd_inspect(args: argparse.Namespace) -> int:
    """Show every field of a key; verify its signature when given public keys."""
    text = _read_text(args.file, "license key")
    unverified = decode_unverified(text)
    compact, fields = unverified.compact, unverified.fields
    rejection: KeyRejected | None = None
    if args.trust:
        trust = TrustStore.from_public_key_texts(
            [_read_text(path, "public key") for path in args.trust]
        )
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
        return _EXIT_ERROR
    return _EXIT_OK


# --- helpers ----------------------------------------------------------------------------


def _new_license_id() -> str:
    """A fresh license id: 48 random bits, so a clash is vanishingly unlikely."""
    return "L-" + secrets.token_hex(6).upper()


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


def _load_signing_key(path: str) -> SigningKey:
    return SigningKey.from_private_text(_read_text(path, "signing key"))


def _emit(key: LicenseKey, signing: SigningKey, out: str | None) -> int:
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
        _write_text(out, armoured, "license key")
        print(summary)
        print(f"Written to {out}.")
    return _EXIT_OK


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


def _read_text(path: str, what: str) -> str:
    """A file's text ('-' for standard input), or InvalidInput saying why not."""
    if path == "-":
        if sys.stdin.isatty():
            print(f"Paste the {what}, then press Ctrl-D.", file=sys.stderr)
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(
            f"The {what} file {path} does not exist.", reason="FILE_NOT_FOUND"
        ) from None
    except UnicodeDecodeError:
        raise InvalidInput(
            f"The {what} file {path} is not a text file.", reason="FILE_NOT_TEXT"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"Cannot read the {what} file {path}: {exc.strerror or exc}.",
            reason="FILE_UNREADABLE",
        ) from None


def _write_text(path: str, text: str, what: str) -> None:
    try:
        Path(path).write_text(text, encoding="ascii")
    except OSError as exc:
        raise InvalidInput(
            f"Cannot write the {what} to {path}: {exc.strerror or exc}.",
            reason="FILE_UNWRITABLE",
        ) from None


def _create_new_file(path: Path, text: str, mode: int, *, exact_mode: bool) -> None:
    """Create `path` with `mode` from the start; refuse if it exists (even as a symlink).

    O_CREAT|O_EXCL makes the existence check and the creation one step, so a private key
    is never written over an existing file and is never readable by others, not even
    for a moment.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise InvalidInput(
            f"{path} exists already; it was not overwritten.", reason="FILE_EXISTS"
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"Cannot create {path}: {exc.strerror or exc}.", reason="FILE_UNWRITABLE"
        ) from None
    try:
        if exact_mode:
            # The umask can only remove bits; set the mode exactly so the private key is
            # 0600 whatever the umask, as the documentation promises.
            os.fchmod(fd, mode)
        data = memoryview(text.encode("ascii"))
        while data:
            data = data[os.write(fd, data) :]
        # The key is announced as written; make sure it is on disk before that.
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise InvalidInput(
            f"Cannot write {path}: {exc.strerror or exc}.", reason="FILE_UNWRITABLE"
        ) from None
    os.close(fd)
