"""officestatus-admin trust list: the vendor public keys the server trusts.

The command and its text, apart from admin_cli.py: `add_commands` adds it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from officestatus_client import _render
from officestatus_client._client import AdminClient
from officestatus_client._models import TrustedKey


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Add `trust list` to the admin CLI's commands."""
    trust = commands.add_parser("trust", help="the vendor keys the server trusts")
    actions = trust.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser(
        "list", help="list the trusted vendor keys, where each came from, the licenses it signed"
    ).set_defaults(run=_trust_list)


async def _trust_list(args: argparse.Namespace, client: AdminClient) -> str:
    keys = await client.trusted_keys()
    return _render.document(keys, "keys") if args.json else trusted_keys_text(keys)


def trusted_keys_text(keys: Sequence[TrustedKey]) -> str:
    """The trusted keys as a table: key id, fingerprint, file, licenses signed."""
    if not keys:
        return (
            "No vendor key is trusted: put the vendor's public key file (NAME.pub) in "
            "vendor-keys/ in the server's data directory."
        )
    rows = [
        (
            key.key_id,
            f"sha256:{key.fingerprint[:16]}",
            key.source if key.data_dir_name else f"{key.source} (outside the data directory)",
            ", ".join(key.license_ids) or "-",
        )
        for key in keys
    ]
    return _render.table(("KEY ID", "FINGERPRINT", "FILE", "LICENSES SIGNED"), rows)
