"""What the packages load: the server and the client share only the protocol package, and
the client's names are plain imports of the modules that define them."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys

import officestatus_client


def _loaded_by(module: str, prefix: str) -> list[str]:
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefix!r}))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return list(json.loads(out))


def test_every_public_client_name_is_the_object_its_module_defines() -> None:
    public = [n for n in dir(officestatus_client) if not n.startswith("_")]
    names = [n for n in public if not inspect.ismodule(getattr(officestatus_client, n))]
    assert {"AdminClient", "SeatClient", "OfficeStatusError", "DenyReason"} <= set(names)
    for name in names:
        value = getattr(officestatus_client, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert getattr(importlib.import_module(value.__module__), name) is value, name


def test_the_server_starts_without_loading_the_client() -> None:
    assert _loaded_by("officestatus_server.cli.server_main", "officestatus_client") == []


def test_the_client_loads_nothing_of_the_server() -> None:
    assert _loaded_by("officestatus_client.admin_cli", "officestatus_server") == []


def test_the_service_loads_no_storage_implementation() -> None:
    assert "officestatus_server.storage.sqlite" not in _loaded_by(
        "officestatus_server.service", "officestatus_server.storage"
    )


def test_a_server_without_http_listen_loads_no_http_stack() -> None:
    # aiohttp and prometheus-client are imported when the HTTP listener starts: a server
    # without one starts as fast as before.
    assert _loaded_by("officestatus_server.cli.server_main", "aiohttp") == []
    assert _loaded_by("officestatus_server.cli.server_main", "prometheus_client") == []
