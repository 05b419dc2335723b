"""officestatus-vendor quote / upgrade / price: the upgrade policy applied to a customer.

    officestatus-vendor quote (--request FILE | --key FILE ...) --target-major N
        --released DATE [--announced DATE] --trust PUBFILE ... [--policy FILE]
        [--out QUOTE] [--json]
    officestatus-vendor upgrade --quote QUOTE --signing-key FILE --trust PUBFILE ...
        [--policy FILE] [--out-dir DIR]
    officestatus-vendor price --seats N [--site] [--major N] [--segment S] [--crossgrade]

Every claim in a customer's request is checked against the signed keys it carries: only
what the vendor's own signature vouches for is priced. `upgrade` prices the quote again
before it issues anything, so an edited quote file issues nothing. The request and the
quote documents are read and written by `officestatus_server.core.upgrade_documents`;
this module reads the files and prints.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Iterable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from officestatus_server.cli.vendor_args import EXIT_OK, add_signing_key, iso_date, whole_number
from officestatus_server.cli.vendor_files import create_new_file, read_text
from officestatus_server.cli.vendor_keys import (
    emit,
    load_signing_key,
    load_trust_store,
    new_license_id,
)
from officestatus_server.core.keys import LicenseKey, LicenseKind, TrustStore
from officestatus_server.core.legacy_keys import read_any_key, unverified_fields
from officestatus_server.core.upgrade import (
    Holding,
    Outcome,
    Policy,
    Quote,
    QuoteLine,
    TargetRelease,
    new_license_price,
    policy_from_mapping,
    quote,
)
from officestatus_server.core.upgrade_documents import quote_json, read_quote, request_key_texts
from officestatus_server.core.versions import SERVER_MAJOR
from officestatus_server.errors import InvalidInput, KeyRejected


def add_commands(commands: Any) -> None:
    """Register quote, upgrade and price on the vendor tool's sub-command parser."""
    q = commands.add_parser(
        "quote",
        help="price an upgrade to a new major release by the policy",
        description="Price each license of an upgrade request (or of key files) for a "
        "target major release: eligible or not, free or discounted, the price, the rule.",
    )
    q.add_argument("--request", metavar="FILE", help="the customer's upgrade request")
    q.add_argument("--key", action="append", default=[], metavar="FILE", help="a license key file")
    q.add_argument("--target-major", type=whole_number, required=True, metavar="N")
    q.add_argument("--released", type=iso_date, required=True, metavar="YYYY-MM-DD")
    q.add_argument("--announced", type=iso_date, metavar="YYYY-MM-DD")
    _add_trust_and_policy(q)
    q.add_argument("--out", metavar="FILE", help="also write the quote, for `upgrade`")
    q.add_argument("--json", action="store_true", help="print JSON instead of a table")
    q.set_defaults(handler=_cmd_quote)

    u = commands.add_parser(
        "upgrade",
        help="issue the new major's keys for a quote",
        description="Issue upgrade keys for every license a quote upgrades: linked to the "
        "license it upgrades, the same seats (site licenses whole), kind free-upgrade "
        "where it was free.",
    )
    u.add_argument("--quote", required=True, metavar="FILE", help="from `quote --out`")
    add_signing_key(u)
    _add_trust_and_policy(u)
    u.add_argument("--out-dir", metavar="DIR", help="write each key to DIR/ID.key")
    u.set_defaults(handler=_cmd_upgrade)

    p = commands.add_parser("price", help="price a new license, with the discounts of the policy")
    p.add_argument("--seats", type=whole_number, default=1)
    p.add_argument("--site", action="store_true", help="a site license")
    p.add_argument("--major", type=whole_number, default=SERVER_MAJOR)
    p.add_argument("--segment", choices=("nonprofit", "education", "government"))
    p.add_argument("--crossgrade", action="store_true", help="from a competing product")
    p.add_argument("--policy", metavar="FILE", help="the policy (default: the built-in one)")
    p.set_defaults(handler=_cmd_price)


def _add_trust_and_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="append",
        required=True,
        metavar="PUBFILE",
        help="the vendor public key(s) the keys must verify against",
    )
    parser.add_argument("--policy", metavar="FILE", help="the policy (default: built-in)")


def load_policy(path: str | None) -> Policy:
    """The policy file given, or the one shipped with the tool."""
    if path is None:
        text = resources.files("officestatus_server").joinpath("vendor_policy.toml").read_text()
    else:
        text = read_text(path, "policy")
    try:
        return policy_from_mapping(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"The policy file is not TOML: {exc}.", "POLICY_INVALID") from None


def holding_of(text: str, trust: TrustStore) -> tuple[Holding, str]:
    """A key as the vendor sees it: verified, or not, with why; and its normalised text."""
    try:
        key, compact = read_any_key(text, trust)
    except KeyRejected as exc:
        return _unverified(text, exc), text.strip()
    return (
        Holding(
            key.license_id,
            key.major_version,
            key.seats,
            key.kind,
            key.customer,
            key.purchase_date,
            upgrades=key.upgrades_license_id,
        ),
        compact,
    )


def _unverified(text: str, rejection: KeyRejected) -> Holding:
    fields = unverified_fields(text)
    try:
        kind = LicenseKind(str(fields.get("kind")))
    except ValueError:
        kind = LicenseKind.PURCHASED
    purchased = fields.get("purchased")
    return Holding(
        license_id=str(fields.get("lid", "?"))[:64],
        major=fields["major"] if isinstance(fields.get("major"), int) else 0,
        seats=fields["seats"] if isinstance(fields.get("seats"), int) else 0,
        kind=kind,
        customer=str(fields.get("customer", ""))[:200],
        purchase_date=_date_or_min(purchased),
        verified=False,
        problem=rejection.message,
    )


def _date_or_min(value: object) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return date.min


def _key_texts(args: argparse.Namespace) -> list[str]:
    texts = [read_text(path, "license key") for path in args.key]
    if args.request:
        texts += request_key_texts(read_text(args.request, "upgrade request"), args.request)
    if not texts:
        raise InvalidInput("Give --request or at least one --key.", reason="NOTHING_TO_QUOTE")
    return texts


def _price_quote(
    texts: Iterable[str], target: TargetRelease, policy: Policy, trust: TrustStore
) -> tuple[Quote, dict[str, str]]:
    holdings: list[Holding] = []
    key_of: dict[str, str] = {}
    for text in texts:
        holding, compact = holding_of(text, trust)
        holdings.append(holding)
        if holding.verified:
            key_of.setdefault(holding.license_id, compact)
    return quote(holdings, target, policy), key_of


def _quote_text(result: Quote) -> str:
    target = result.target
    announced = f", announced {target.announced.isoformat()}" if target.announced else ""
    header = (
        f"Upgrade to OfficeStatus {target.major} (released {target.released.isoformat()}"
        f"{announced}), prices in {result.currency}"
    )
    rows = [
        (
            line.holding.license_id,
            line.holding.kind.value,
            str(line.holding.seats),
            f"{line.holding.major}.x",
            line.holding.purchase_date.isoformat() if line.holding.verified else "-",
            line.outcome.value,
            str(line.price),
            line.rule,
        )
        for line in result.lines
    ]
    headers = ("LICENSE", "KIND", "SEATS", "FOR", "PURCHASED", "OUTCOME", "PRICE", "RULE")
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [header, ""]
    for row in (headers, *rows):
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    lines += ["", f"Total: {result.total} {result.currency}"]
    return "\n".join(lines)


def _cmd_quote(args: argparse.Namespace) -> int:
    target = TargetRelease(args.target_major, args.released, args.announced)
    result, key_of = _price_quote(
        _key_texts(args), target, load_policy(args.policy), load_trust_store(args.trust)
    )
    document = quote_json(result, key_of)
    if args.out:
        create_new_file(Path(args.out), document + "\n", 0o644, exact_mode=False)
    print(document if args.json else _quote_text(result))
    return EXIT_OK


def _cmd_upgrade(args: argparse.Namespace) -> int:
    quoted = read_quote(read_text(args.quote, "quote"), args.quote)
    target = quoted.target
    result, _ = _price_quote(
        quoted.key_texts, target, load_policy(args.policy), load_trust_store(args.trust)
    )
    if not quoted.matches(result):
        raise InvalidInput(
            "The quote file does not match what the policy says for its keys now (edited, "
            "or the policy changed): quote again.",
            reason="QUOTE_MISMATCH",
        )
    signing = load_signing_key(args.signing_key)
    issued = 0
    for line in result.lines:
        if not line.outcome.upgrades:
            print(f"{line.holding.license_id}: no upgrade key ({line.outcome.value}: {line.rule})")
            continue
        key = upgrade_key(line, target, signing.key_id, date.today())
        out = str(Path(args.out_dir) / f"{key.license_id}.key") if args.out_dir else None
        emit(key, signing, out)
        issued += 1
    print(
        f"Issued {issued} upgrade keys for OfficeStatus {target.major}; total {result.total} "
        f"{result.currency}."
    )
    return EXIT_OK


def upgrade_key(
    line: QuoteLine, target: TargetRelease, signing_key_id: str, today: date
) -> LicenseKey:
    """The new major's key for a quoted license: linked to it, the same seats (a site
    license whole), kind free-upgrade where the upgrade was free."""
    old = line.holding
    if line.outcome is Outcome.FREE:
        kind = LicenseKind.FREE_UPGRADE
    else:
        kind = LicenseKind.SITE if old.kind is LicenseKind.SITE else LicenseKind.PURCHASED
    new_id = f"{old.license_id}-U{target.major}"
    if len(new_id) > 64:
        new_id = new_license_id()
    return LicenseKey(
        signing_key_id=signing_key_id,
        license_id=new_id,
        major_version=target.major,
        seats=old.seats,
        kind=kind,
        customer=old.customer,
        purchase_date=today,
        issue_date=today,
        upgrades_license_id=old.license_id,
    )


def _cmd_price(args: argparse.Namespace) -> int:
    policy = load_policy(args.policy)
    price, rule = new_license_price(
        args.seats,
        args.major,
        policy,
        site=args.site,
        segment=args.segment,
        crossgrade=args.crossgrade,
    )
    what = "a site license" if args.site else f"{args.seats} seats"
    print(f"OfficeStatus {args.major}, {what}: {price} {policy.currency} ({rule})")
    return EXIT_OK


__all__ = ["add_commands", "holding_of", "load_policy", "upgrade_key"]
