"""The upgrade request: what a customer e-mails the vendor to get an upgrade quote.

A JSON document listing every installed license, counting or not, each with its signed
key: the vendor believes the keys, not the listed fields, which are there for people.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from officestatus.formats import UPGRADE_REQUEST_FORMAT, UPGRADE_REQUEST_VERSION
from officestatus_client._models import License, Status


def upgrade_request(licenses: list[License], status: Status, created: datetime) -> dict[str, Any]:
    """The request document for these licenses on this server."""
    return {
        "format": UPGRADE_REQUEST_FORMAT,
        "version": UPGRADE_REQUEST_VERSION,
        "created": created.isoformat(timespec="seconds"),
        "installation_id": status.installation_id,
        "server_version": status.server_version,
        "customers": sorted({lic.customer for lic in licenses if lic.customer}),
        "licenses": [
            {
                "license_id": lic.license_id,
                "kind": lic.kind,
                "seats": lic.seats,
                "major_version": lic.major_version,
                "customer": lic.customer,
                "purchase_date": lic.purchase_date.isoformat() if lic.purchase_date else None,
                "counts": lic.counts,
                "not_counting_reason": lic.not_counting_reason,
                "key": lic.key,
            }
            for lic in licenses
        ],
    }
