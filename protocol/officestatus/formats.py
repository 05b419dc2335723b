"""The documents the customer's side and the vendor's side exchange as files.

The admin CLI writes an upgrade request (`officestatus-admin upgrade-request`), which the
customer e-mails to the vendor, whose tool reads it. A document says what it is in its
"format" field and which revision of that format in its "version" field.
"""

from __future__ import annotations

UPGRADE_REQUEST_FORMAT = "officestatus-upgrade-request"
UPGRADE_REQUEST_VERSION = 1
