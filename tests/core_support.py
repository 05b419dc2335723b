"""Helpers the pure-core tests share: moments after START, registries built and changed
only through the plan_* functions and `Registry.apply` (with `now` passed in), and keys
signed by the test vendor."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from officestatus_server.core.keys import LicenseKey, sign_key
from officestatus_server.core.licensing import (
    Registry,
    plan_add_users,
    plan_disable,
    plan_enable,
    plan_install,
    plan_remove,
)
from officestatus_server.core.model import Installation, InstalledLicense
from tests.support import START, Vendor

HERE = "inst-0001"


def at(days: float = 0, **more: float) -> datetime:
    """START plus a number of days (and hours, seconds...)."""
    return START + timedelta(days=days, **more)


def day_date(days: int) -> date:
    return (START + timedelta(days=days)).date()


def names(count: int, prefix: str = "user") -> list[str]:
    return [f"{prefix}{i:02d}" for i in range(1, count + 1)]


def fresh(installation_id: str = HERE) -> Registry:
    """A new installation, first started at START: no licenses, no users."""
    return Registry.build(Installation(installation_id, START), [], [])


def text_of(vendor: Vendor, key: LicenseKey) -> str:
    """`key` signed by `vendor`, as an admin pastes it."""
    return sign_key(key, vendor.signing.private_key)


def install(vendor: Vendor, registry: Registry, key: LicenseKey, now: datetime) -> Registry:
    return registry.apply(plan_install(registry, key, text_of(vendor, key), now))


def licensed(vendor: Vendor, *seats: int, now: datetime | None = None) -> Registry:
    """A registry with licenses of these seats installed at day 1, in order."""
    registry = fresh()
    for count in seats:
        registry = install(vendor, registry, vendor.key(count), now or at(1))
    return registry


def add(registry: Registry, users: Iterable[str], now: datetime, enable: bool = True) -> Registry:
    return registry.apply(plan_add_users(registry, list(users), enable, now))


def enable(registry: Registry, users: Iterable[str], now: datetime) -> Registry:
    return registry.apply(plan_enable(registry, list(users), now))


def disable(registry: Registry, users: Iterable[str], now: datetime) -> Registry:
    return registry.apply(plan_disable(registry, list(users), now))


def remove(registry: Registry, license_id: str, now: datetime, force: bool = False) -> Registry:
    return registry.apply(plan_remove(registry, license_id, force, now))


def stored(vendor: Vendor, key: LicenseKey, now: datetime = START) -> InstalledLicense:
    """A license as storage hands it over (e.g. carried over from a 5.x installation)."""
    return InstalledLicense(key.license_id, text_of(vendor, key), now, key)


def license_ids(registry: Registry) -> list[str]:
    return [lic.license_id for lic in registry.licenses]
