"""The admin CLI's argument parser: global options anywhere on the line, errors raised.

Every sub-command parser (and every sub-sub-command's) is made with a copy of the global
options (`--address`, `--json`, ...) whose defaults are `argparse.SUPPRESS`: an option
given after the command (`officestatus-admin status --json`) sets the value, one not given
there leaves what the top-level parser set (its default, or the option given before the
command). A new command inherits them by being added as any other:

    commands.add_parser("sessions", help="...").set_defaults(run=_sessions)

A parse error raises `ParseFailure` instead of printing and exiting, so that the caller
reports it as text or, under `--json`, as a JSON error document.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from officestatus.paths import DEFAULT_ADDRESS
from officestatus_client._transport import DEFAULT_TIMEOUT

ADDRESS_ENV = "OFFICESTATUS_ADDRESS"


class ParseFailure(Exception):
    """The command line does not parse; `usage` is the usage line of the parser that said so."""

    def __init__(self, message: str, usage: str, prog: str) -> None:
        super().__init__(message)
        self.message = message
        self.usage = usage
        self.prog = prog


def add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command takes; with `defaults=False`, copies that set nothing
    unless given (for the sub-command parsers)."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument(
        "--address",
        "--server",
        dest="address",
        metavar="HOST:PORT",
        default=default(os.environ.get(ADDRESS_ENV) or DEFAULT_ADDRESS),
        help=f"server address (default: ${ADDRESS_ENV} or {DEFAULT_ADDRESS})",
    )
    group.add_argument(
        "--data-dir",
        type=Path,
        default=default(None),
        help="the server's data directory, where its admin token is",
    )
    group.add_argument(
        "--token-file", type=Path, default=default(None), help="the admin token file to use"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default(DEFAULT_TIMEOUT),
        help=f"seconds to wait for each answer (default: {DEFAULT_TIMEOUT:g})",
    )
    group.add_argument(
        "--wait",
        type=float,
        default=default(0.0),
        metavar="SECONDS",
        help="first wait up to SECONDS for the server to come up (for scripts that start it)",
    )
    group.add_argument(
        "--tls-ca",
        type=Path,
        default=default(None),
        help="TLS: the CA certificate (PEM) that signed the server's",
    )
    group.add_argument(
        "--tls-cert",
        type=Path,
        default=default(None),
        help="mutual TLS: this client's certificate",
    )
    group.add_argument(
        "--tls-key", type=Path, default=default(None), help="mutual TLS: this client's key"
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print JSON, for scripts (errors too, on standard output)",
    )


@functools.cache
def _global_options_copy() -> argparse.ArgumentParser:
    # One for all: a parent's actions are shared by the parsers made from it, and these
    # hold nothing that a parse changes.
    parent = argparse.ArgumentParser(add_help=False)
    add_global_options(parent, defaults=False)
    return parent


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Sub-command parsers that take the global options too."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        kwargs["parents"] = [_global_options_copy(), *kwargs.get("parents", ())]
        parser: argparse.ArgumentParser = super().add_parser(name, **kwargs)
        return parser


class AdminParser(argparse.ArgumentParser):
    """An ArgumentParser whose sub-commands inherit the global options, and whose errors
    raise `ParseFailure`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.register("action", "parsers", _Commands)

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage and exiting with 2."""
        raise ParseFailure(message, self.format_usage(), self.prog)


def json_requested(argv: Sequence[str]) -> bool:
    """Whether `--json` is on the line, for reporting what comes before or without a parse
    (an argument error, an interrupt)."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False
