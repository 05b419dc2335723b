"""officestatus-admin: manage a license server's licenses and users from the command line.

A thin layer over AdminClient: parse the arguments, make one call, show the reply. The
exit codes are the table in `_cli_errors` (`--help` lists them); `login` exits 1 when the
user is refused. Under `--json` every document printed, an error's too, goes to standard
output and carries "format" and "version" (`_render.document`). Ctrl-C ends the run with
one line, "interrupted", and exit code 130; a reader that goes away (`user list | head -1`)
ends it quietly with 141.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.metadata
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import redirect_stderr, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from officestatus_client import _cli_sessions, _cli_trust, _cli_usage, _render
from officestatus_client._cli_errors import (
    Exit,
    Failure,
    ProblemsFound,
    UsageError,
    exit_codes_text,
    failure_from,
)
from officestatus_client._cli_parser import (
    AdminParser,
    ParseFailure,
    add_global_options,
    json_requested,
)
from officestatus_client._client import CLIENT_VERSION, AdminClient, SeatClient, key_folder
from officestatus_client._errors import OfficeStatusError
from officestatus_client._models import TlsConfig
from officestatus_client._upgrade_request import upgrade_request
from officestatus_client._user_import import UsersFile, UsersFileError, names_in, read_users_csv

PROG = "officestatus-admin"
# The distribution the client is installed from.
PACKAGE = "officestatus-license-server"

EXIT_OK = Exit.OK
EXIT_REFUSED = Exit.REFUSED
EXIT_USAGE = Exit.USAGE
EXIT_UNREACHABLE = Exit.UNREACHABLE
EXIT_AUTHENTICATION = Exit.NOT_AUTHORISED
EXIT_FOUND_PROBLEMS = Exit.PROBLEMS_FOUND
EXIT_INTERRUPTED = Exit.INTERRUPTED
EXIT_BROKEN_PIPE = Exit.BROKEN_PIPE

# A command: the parsed arguments and a client in, the text to print out.
Command = Callable[[argparse.Namespace, AdminClient], Awaitable[str]]

_FORMAT_FIELDS = f'"format": "{_render.CLI_FORMAT}", "version": {_render.CLI_FORMAT_VERSION}'
_EPILOG = f"""\
{exit_codes_text()}

Global options may stand before or after the command: `{PROG} status --json`
is `{PROG} --json status`. Under --json, an error is a JSON document on
standard output too, with {_FORMAT_FIELDS}
and "error": {{"code", "reason", "message", "exit_code", "exit"}}.
"""


def version_text() -> str:
    """What `--version` prints: the installed client's version and its protocol release."""
    try:
        installed = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        installed = CLIENT_VERSION
    release = CLIENT_VERSION.split(".", 1)[0]
    return f"{PROG} {installed} (protocol release {release}, logs in as client {CLIENT_VERSION})"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one sub-command per admin call.

    Every parser made by `commands.add_parser(...)` (or a sub-command's `add_parser`)
    takes the global options as well (see `_cli_parser`): adding a command is one line.
    """
    parser = AdminParser(
        prog=PROG,
        description="Manage the licenses and users of an OfficeStatus License Server.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    add_global_options(parser, defaults=True)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lic = commands.add_parser("license", help="install, remove or list licenses")
    lic_cmds = lic.add_subparsers(dest="action", required=True, metavar="ACTION")
    install = lic_cmds.add_parser("install", help="install a license key")
    install.add_argument("file", metavar="FILE", help="file holding the key, or - for stdin")
    install.set_defaults(run=_license_install)
    remove = lic_cmds.add_parser("remove", help="remove a license")
    remove.add_argument("license_id", metavar="ID")
    remove.add_argument(
        "--force",
        action="store_true",
        help="remove even if more users would then be enabled than there are seats",
    )
    remove.set_defaults(run=_license_remove)
    lic_cmds.add_parser("list", help="list installed licenses").set_defaults(run=_license_list)

    user = commands.add_parser("user", help="add, import, enable, disable, remove or list users")
    user_cmds = user.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, help_text, run in (
        ("add", "add users", _user_add),
        ("enable", "enable users (all or none, seats permitting)", _user_enable),
        ("disable", "disable users, freeing their seats", _user_disable),
    ):
        sub = user_cmds.add_parser(name, help=help_text)
        sub.add_argument("names", nargs="*", metavar="NAME")
        sub.add_argument(
            "--from-file", type=Path, metavar="F", help="also the names in F, one a line"
        )
        if name == "add":
            sub.add_argument("--enable", action="store_true", help="enable them as well")
        sub.set_defaults(run=run)
    remove_users = user_cmds.add_parser("remove", help="remove users (all or none)")
    remove_users.add_argument("names", nargs="*", metavar="NAME")
    remove_users.add_argument(
        "--from-file", type=Path, metavar="F", help="also the names in F, one a line"
    )
    remove_users.add_argument(
        "--force", action="store_true", help="remove enabled users too (disabled first)"
    )
    remove_users.set_defaults(run=_user_remove)
    import_users = user_cmds.add_parser(
        "import",
        help="add the users of a 2.x users.csv (UserName,Enabled) and enable those marked Y, "
        "in one change",
    )
    import_users.add_argument("users_csv", metavar="FILE", type=Path, help="the users.csv")
    import_users.set_defaults(run=_user_import)
    user_cmds.add_parser("list", help="list users").set_defaults(run=_user_list)

    commands.add_parser("status", help="show the licensing state").set_defaults(run=_status)
    report = commands.add_parser(
        "takeover-report",
        help="show the whole report of the takeover of the older server this one replaced",
    )
    report.add_argument(
        "--seen",
        action="store_true",
        help="then mark it seen: the status no longer shows it (it stays readable here)",
    )
    report.set_defaults(run=_takeover_report)
    audit = commands.add_parser(
        "audit", help="show recent admin changes, or verify the log (audit verify)"
    )
    audit.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    audit.set_defaults(run=_audit)
    audit_cmds = audit.add_subparsers(dest="audit_action", metavar="ACTION")
    audit_cmds.add_parser(
        "verify", help="check the log's hash chain for edited, inserted or deleted records"
    ).set_defaults(run=_audit_verify)

    request = commands.add_parser(
        "upgrade-request",
        help="write the file to e-mail Key Metric Software for an upgrade quote",
    )
    request.add_argument(
        "--out", type=Path, help="write it to this new file (default: standard output)"
    )
    request.set_defaults(run=_upgrade_request)
    preview = commands.add_parser(
        "upgrade-preview",
        help="what moving to the next major release would do to the seats",
    )
    preview.add_argument(
        "--target-major", type=int, default=0, help="the major release (default: the next)"
    )
    preview.set_defaults(run=_upgrade_preview)

    backup = commands.add_parser(
        "backup", help="copy the server's database to a file, while the server runs"
    )
    backup.add_argument("target", metavar="FILE", type=Path, help="the new backup file")
    backup.set_defaults(run=_backup)
    _cli_sessions.add_commands(commands)
    _cli_trust.add_commands(commands)
    _cli_usage.add_commands(commands)

    login = commands.add_parser(
        "login", help="log in as an OfficeStatus client would, and show what it is told"
    )
    login.add_argument("user_name", metavar="NAME")
    login.add_argument(
        "--client-version",
        default=CLIENT_VERSION,
        help=f"the client release to act as, e.g. 3.4.2 or 5.2.0 (default {CLIENT_VERSION})",
    )
    login.add_argument("--machine", default="", help="the machine name a 4.x or later client sends")
    login.add_argument(
        "--keep", action="store_true", help="keep the session (a 5.x or later client's) open"
    )
    login.set_defaults(seat_command=_login)
    return parser


# --- commands ---------------------------------------------------------------------------


async def _license_install(args: argparse.Namespace, client: AdminClient) -> str:
    lic, status = await client.install_license(args.key_text)
    if args.json:
        return _render.document({"license": lic, "status": status})
    return _render.license_changed_text("Installed", lic, status)


async def _license_remove(args: argparse.Namespace, client: AdminClient) -> str:
    lic, status = await client.remove_license(args.license_id, force=args.force)
    if args.json:
        return _render.document({"license": lic, "status": status})
    return _render.license_changed_text("Removed", lic, status)


async def _license_list(args: argparse.Namespace, client: AdminClient) -> str:
    licenses = await client.list_licenses()
    return _render.document(licenses, "licenses") if args.json else _render.licenses_text(licenses)


async def _user_add(args: argparse.Namespace, client: AdminClient) -> str:
    users, status = await client.add_users(args.user_names, enable=args.enable)
    if args.json:
        return _render.document({"users": users, "status": status})
    verb = "Added and enabled" if args.enable else "Added"
    return _render.users_changed_text(verb, users, status)


async def _user_enable(args: argparse.Namespace, client: AdminClient) -> str:
    users, status = await client.enable_users(args.user_names)
    if args.json:
        return _render.document({"users": users, "status": status})
    return _render.users_changed_text("Enabled", users, status)


async def _user_disable(args: argparse.Namespace, client: AdminClient) -> str:
    users, status = await client.disable_users(args.user_names)
    if args.json:
        return _render.document({"users": users, "status": status})
    return _render.users_changed_text("Disabled", users, status)


async def _user_remove(args: argparse.Namespace, client: AdminClient) -> str:
    users, status = await client.remove_users(args.user_names, force=args.force)
    if args.json:
        return _render.document({"users": users, "status": status})
    return _render.users_changed_text("Removed", users, status)


async def _user_import(args: argparse.Namespace, client: AdminClient) -> str:
    read: UsersFile = args.users_file
    users, status = await client.import_users(read.pairs())
    if args.json:
        return _render.document({"encoding": read.encoding, "users": users, "status": status})
    return (
        f"Read {read.path} as {read.encoding}: {len(read.rows)} users, "
        f"{read.enabled} marked enabled.\n"
        f"Imported {len(users)} users ({sum(1 for u in users if u.enabled)} enabled).\n"
        f"{status.summary}"
    )


async def _user_list(args: argparse.Namespace, client: AdminClient) -> str:
    users = await client.list_users()
    return _render.document(users, "users") if args.json else _render.users_text(users)


async def _status(args: argparse.Namespace, client: AdminClient) -> str:
    status = await client.status()
    return _render.document(status) if args.json else _render.status_text(status)


async def _takeover_report(args: argparse.Namespace, client: AdminClient) -> str:
    report = await client.takeover_report()
    if report is None:
        if args.json:
            return _render.document({"took_over": False})
        return "No takeover: this installation was not made from an older server's."
    if args.seen and not report.seen:
        await client.mark_takeover_report_seen()
        report = dataclasses.replace(report, seen=True)
    if args.json:
        document = {"took_over": True, **dataclasses.asdict(report), "sha256": report.sha256}
        return _render.document(document)
    return _render.takeover_report_text(report)


async def _audit(args: argparse.Namespace, client: AdminClient) -> str:
    records = await client.audit(limit=args.limit)
    return _render.document(records, "records") if args.json else _render.audit_text(records)


async def _login(args: argparse.Namespace, client: SeatClient) -> tuple[str, bool]:
    result = await client.login(args.user_name, machine_name=args.machine)
    if result.session_id and not args.keep:
        await client.logout(result.session_id)
    text = _render.document(result) if args.json else _render.login_text(result)
    return text, result.granted


async def _upgrade_request(args: argparse.Namespace, client: AdminClient) -> str:
    licenses = await client.list_licenses()
    status = await client.status()
    text = _render.to_json(upgrade_request(licenses, status, datetime.now(UTC)))
    if args.out is None:
        return text
    with _new_file(args.out) as out:
        out.write(text + "\n")
    seats = sum(lic.seats for lic in licenses)
    if args.json:
        return _render.document({"file": str(args.out), "licenses": len(licenses), "seats": seats})
    return (
        f"Upgrade request written to {args.out}: {len(licenses)} licenses ({seats} seats), "
        "with their signed keys. E-mail it to Key Metric Software for a quote."
    )


async def _upgrade_preview(args: argparse.Namespace, client: AdminClient) -> str:
    preview = await client.preview_upgrade(args.target_major)
    return _render.document(preview) if args.json else _render.preview_text(preview)


async def _audit_verify(args: argparse.Namespace, client: AdminClient) -> str:
    report = await client.verify_audit()
    text = _render.document(report) if args.json else _render.audit_verification_text(report)
    if not report.intact:
        # The same report, and exit code 5, in both modes: a script sees the tampering.
        raise ProblemsFound("the audit log has been tampered with", report=text)
    return text


async def _backup(args: argparse.Namespace, client: AdminClient) -> str:
    target: Path = args.target
    folder = key_folder(target)
    if folder.exists():
        raise UsageError(f"{folder} exists already; name a new backup file")
    written = await client.backup_with_keys(target)
    size = written.size
    problem = _render.sqlite_problem(target)
    if problem:
        raise ProblemsFound(f"the backup {target} is damaged: {problem}")
    outside = [k.source for k in await client.trusted_keys() if k.data_dir_name is None]
    if args.json:
        return _render.document(
            {
                "file": str(target),
                "bytes": size,
                "integrity": "ok",
                "vendor_key_files": [str(p) for p in written.key_files],
                "vendor_keys_outside_data_dir": outside,
            }
        )
    lines = [f"Backup written to {target} ({size} bytes, integrity ok)."]
    if written.key_files:
        names = ", ".join(p.name for p in written.key_files)
        lines.append(
            f"The trusted vendor key files of the data directory beside it: {folder}/ ({names})."
        )
    if outside:
        lines.append(
            "Trusted keys outside the data directory are not in the backup: "
            f"{', '.join(outside)}. Keep them, and give them to the server again (--vendor-key)."
        )
    restore_keys = (
        f" and put the files of {folder}/ into vendor-keys/ there," if written.key_files else ""
    )
    lines.append(
        "To restore: stop the server, replace officestatus.db in its data directory with "
        f"this file (delete officestatus.db-wal and officestatus.db-shm),{restore_keys} "
        "start the server."
    )
    return "\n".join(lines)


# --- input ------------------------------------------------------------------------------


def _read_input(args: argparse.Namespace) -> None:
    """Read the key file or the names before connecting, so a usage error comes first."""
    if getattr(args, "file", None) is not None:
        args.key_text = _read_text(args.file)
    if hasattr(args, "names"):
        args.user_names = _names(args)
    if getattr(args, "users_csv", None) is not None:
        try:
            args.users_file = read_users_csv(args.users_csv)
        except UsersFileError as exc:
            raise UsageError(str(exc)) from None
    for target in (getattr(args, "target", None), getattr(args, "out", None)):
        if target is not None and target.exists():
            raise UsageError(f"{target} exists already; name a new file")


def _read_text(name: str) -> str:
    """A file's text, or standard input's for "-"."""
    if name == "-":
        return sys.stdin.read()
    try:
        return Path(name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read {name}: {_os_reason(err)}") from None


def _names(args: argparse.Namespace) -> list[str]:
    """The names on the command line, then those in --from-file (one a line; blank lines,
    # comments and a header line skipped)."""
    names = [str(n) for n in args.names]
    if args.from_file is not None:
        path: Path = args.from_file
        try:
            names.extend(names_in(path, path.read_bytes()))
        except OSError as err:
            raise UsageError(f"cannot read {path}: {_os_reason(err)}") from None
        except UsersFileError as exc:
            raise UsageError(str(exc)) from None
    if not names:
        raise UsageError("name at least one user, or give --from-file with names in it")
    return names


def _new_file(path: Path) -> TextIO:
    """A new text file; refuses to replace one that appeared meanwhile."""
    try:
        return path.open("x", encoding="utf-8")
    except OSError as err:
        raise UsageError(f"cannot write {path}: {_os_reason(err)}") from None


def _os_reason(err: Exception) -> str:
    return err.strerror if isinstance(err, OSError) and err.strerror else str(err)


# --- running ----------------------------------------------------------------------------


async def run(
    argv: list[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    """Run the CLI inside a running event loop; returns the exit code."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    words = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        # --help and --version print to sys.stdout: here, to this run's.
        with redirect_stdout(out), redirect_stderr(err):
            args = parser.parse_args(words)
    except SystemExit as exit_:
        # --help or --version, printed already.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    except ParseFailure as exc:
        if json_requested(words):
            return _report(Failure(Exit.USAGE, "USAGE", exc.message), True, out, err)
        print(exc.usage, end="", file=err)
        print(f"{exc.prog}: error: {exc.message}", file=err)
        return EXIT_USAGE
    json_mode: bool = args.json
    ok = True
    try:
        _read_input(args)
        tls = None
        if args.tls_ca or args.tls_cert or args.tls_key:
            tls = TlsConfig(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)
        if args.wait:
            # Before the token is read: a server starting for the first time writes it.
            async with SeatClient(args.address, timeout=args.timeout, tls=tls) as probe:
                await probe.wait_until_ready(args.wait)
        if hasattr(args, "seat_command"):
            async with SeatClient(
                args.address, args.client_version, timeout=args.timeout, tls=tls
            ) as seat_client:
                text, ok = await args.seat_command(args, seat_client)
        else:
            command: Command = args.run
            async with AdminClient.local(
                args.address,
                args.data_dir,
                token_file=args.token_file,
                timeout=args.timeout,
                tls=tls,
            ) as client:
                text = await command(args, client)
    except UsageError as exc:
        if json_mode:
            return _report(Failure(Exit.USAGE, "USAGE", str(exc)), True, out, err)
        print(f"{parser.prog}: error: {exc}", file=err)
        return EXIT_USAGE
    except ProblemsFound as exc:
        if exc.report is not None:
            print(exc.report, file=out)
            return EXIT_FOUND_PROBLEMS
        # Text mode keeps the finding on standard output, where the report would be.
        failure = Failure(Exit.PROBLEMS_FOUND, "PROBLEMS_FOUND", exc.message)
        return _report(failure, json_mode, out, out)
    except OfficeStatusError as exc:
        return _report(failure_from(exc), json_mode, out, err)
    print(text, file=out)
    # A refused login is an answer, not a failure of the call; scripts still see it.
    return EXIT_OK if ok else EXIT_REFUSED


def _report(failure: Failure, json_mode: bool, out: TextIO, err: TextIO) -> int:
    """Report a failure: under --json as an error document on `out`, else one line on
    `err`; returns its exit code."""
    if json_mode:
        print(_render.document({"error": failure.as_dict()}), file=out)
    elif failure.exit is Exit.PROBLEMS_FOUND:
        print(failure.message, file=err)
    else:
        print(f"error: {failure.message} ({failure.reason or failure.code})", file=err)
    return int(failure.exit)


def main(argv: list[str] | None = None) -> int:
    """The officestatus-admin entry point; returns the exit code.

    Ctrl-C: one line, "interrupted" (under --json, the error document), and 130, without
    a traceback. A closed pipe (`user list | head -1`): nothing more is written, and 141,
    what a shell reports for a tool that SIGPIPE ends; standard output is pointed at
    os.devnull, as the Python documentation advises, so that the flush at exit does not
    fail again.
    """
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        code = asyncio.run(run(words))
        # Here, not at exit: a closed pipe shows now, where it is caught.
        sys.stdout.flush()
    except KeyboardInterrupt:
        failure = Failure(Exit.INTERRUPTED, "INTERRUPTED", "interrupted")
        try:
            if json_requested(words):
                return _report(failure, True, sys.stdout, sys.stderr)
            print(failure.message, file=sys.stderr)
        except BrokenPipeError:
            _stdout_to_devnull()
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _stdout_to_devnull()
        return EXIT_BROKEN_PIPE
    return code


def _stdout_to_devnull() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
