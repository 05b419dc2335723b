"""What the packages load: the client's names resolve lazily, and the server does not
load the client's stubs and models at start-up (it needs only the shared data paths)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import officestatus_client


def test_every_exported_client_name_resolves_to_its_definition() -> None:
    assert sorted(officestatus_client.__all__) == sorted(officestatus_client._EXPORTS)
    for name, module in officestatus_client._EXPORTS.items():
        defined = getattr(importlib.import_module(f"officestatus_client.{module}"), name)
        assert getattr(officestatus_client, name) is defined, name
    assert set(officestatus_client.__all__) <= set(dir(officestatus_client))


def test_an_unknown_client_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        officestatus_client.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


def test_the_server_starts_without_loading_the_client() -> None:
    code = (
        "import json, sys, officestatus_server.cli.server_main; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('officestatus_client'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert json.loads(out) == ["officestatus_client", "officestatus_client._paths"]
