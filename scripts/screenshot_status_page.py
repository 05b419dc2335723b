"""Make the README's screenshot of the status page's overview (docs/status-page.png).

A real server on free ports, in a temporary folder, set up as an office would be with the
admin CLI (a 25-seat and a 10-seat license, 40 users, 33 of them enabled), and its
overview as headless Chromium shows it after the sign-in. Needs the development tools
(`./scripts/check` has set up .venv and installed Chromium):

    .venv/bin/python scripts/screenshot_status_page.py [--out docs/status-page.png]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a file: the checkout's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser import open_browser, running, screenshot, sign_in, start_page_server
from tests.support import Vendor

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "status-page.png"
_NAMES = [
    *("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"),
    *("mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter"),
    *("yvonne", "zoe", "amir", "bela", "chen", "dana", "emeka", "fatima", "goran", "hana"),
    *("ines", "jonas", "kofi", "lena", "mateo", "nour", "oskar", "priya", "quinn", "rosa"),
    "sven",
]
ENABLED = 33
WIDTH = 1200


def make(out: Path) -> Path:
    """Set up the server, sign in, and save the overview at `out`; returns `out`."""
    with tempfile.TemporaryDirectory(prefix="status-page-") as scratch:
        folder = Path(scratch)
        vendor = Vendor()
        public = vendor.write_public_key(folder)
        with running(start_page_server(folder / "data", "--vendor-key", str(public))) as server:
            for seats in (25, 10):
                key = folder / f"acme-{seats}.key"
                key.write_text(vendor.issue(seats, customer="Acme Ltd", license_id=f"ACME-{seats}"))
                _ok(server.admin("license", "install", str(key)))
            _ok(server.admin("user", "add", *_NAMES))
            _ok(server.admin("user", "enable", *_NAMES[:ENABLED]))
            browser = open_browser(folder / "chromium-profile", (WIDTH, 900))
            try:
                sign_in(browser, server)
                # The whole overview in one picture: the window as tall as the page.
                height = int(browser.execute_script("return document.body.scrollHeight"))
                browser.set_window_size(WIDTH, height + 140)
                out.parent.mkdir(parents=True, exist_ok=True)
                screenshot(browser, out)
            finally:
                browser.quit()
    return out


def _ok(document: dict[str, object]) -> None:
    if "error" in document:
        raise SystemExit(f"officestatus-admin refused: {document['error']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=OUT, help=f"the PNG file (default: {OUT})")
    args = parser.parse_args(argv)
    print(make(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
