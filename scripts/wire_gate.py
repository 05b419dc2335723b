"""The wire gate: the living client protocol still speaks every frozen client release.

1. Every frozen release under proto/frozen/ is exactly as released: its SHA-256 is the
   one recorded in proto/frozen/SHA256SUMS when it was frozen.
2. `buf lint` on the living protocols (buf.yaml).
3. `buf breaking` of the living protocol against each frozen release (WIRE_JSON, plus
   RPC_NO_DELETE and SERVICE_NO_DELETE): no field, enum value, RPC or service a released
   client uses was removed, renumbered or retyped. Each release is compiled to a
   descriptor set with grpcio-tools' protoc, so buf compares against exactly that file.

buf comes from the npm registry (@bufbuild/buf, installed by `npm ci`). `--root` runs the
gate on another copy of the tree, which is how the tests show that it fails.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FROZEN = Path("proto") / "frozen"
MANIFEST = FROZEN / "SHA256SUMS"


def frozen_releases(root: Path) -> list[Path]:
    """The frozen release folders (v3, v4, ...), oldest first."""
    folders = [p for p in (root / FROZEN).iterdir() if p.is_dir() and p.name.startswith("v")]
    return sorted(folders, key=lambda p: int(p.name[1:]))


def check_manifest(root: Path) -> list[str]:
    """Problems with the frozen files against the manifest; empty when all is as released."""
    recorded: dict[str, str] = {}
    for line in (root / MANIFEST).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            recorded[name] = digest
    present = {str(p.relative_to(root / FROZEN)): p for p in (root / FROZEN).rglob("*.proto")}
    problems = [f"{name}: frozen file missing" for name in sorted(recorded.keys() - present.keys())]
    problems += [
        f"{name}: not in {MANIFEST}; record its hash when a release is frozen"
        for name in sorted(present.keys() - recorded.keys())
    ]
    for name in sorted(recorded.keys() & present.keys()):
        digest = hashlib.sha256(present[name].read_bytes()).hexdigest()
        if digest != recorded[name]:
            problems.append(f"{name}: edited after it was released (sha256 {digest[:12]}…)")
    return problems


def buf_command(root: Path) -> str:
    """The buf binary: $BUF, or the one `npm ci` installed."""
    configured = os.environ.get("BUF")
    if configured:
        return configured
    for base in (root, ROOT):
        candidate = base / "node_modules" / ".bin" / "buf"
        if candidate.exists():
            return str(candidate)
    raise SystemExit("buf is not installed: run `npm ci` (scripts/check does)")


def run_gate(root: Path) -> int:
    """Run every step; returns 0 when the living protocol passes them all."""
    failed = False
    problems = check_manifest(root)
    for problem in problems:
        print(f"frozen: {problem}")
    failed |= bool(problems)
    buf = buf_command(root)
    lint = subprocess.run([buf, "lint"], cwd=root, check=False)
    print(f"buf lint: {'ok' if lint.returncode == 0 else 'FAILED'}")
    failed |= lint.returncode != 0
    with tempfile.TemporaryDirectory() as tmp:
        for release in frozen_releases(root):
            image = Path(tmp) / f"{release.name}.binpb"
            protos = [str(p.relative_to(release)) for p in sorted(release.rglob("*.proto"))]
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "grpc_tools.protoc",
                    f"--proto_path={release}",
                    "--include_imports",
                    f"--descriptor_set_out={image}",
                    *protos,
                ],
                check=True,
            )
            result = subprocess.run(
                [buf, "breaking", "proto", "--against", str(image)], cwd=root, check=False
            )
            ok = result.returncode == 0
            print(f"buf breaking against {release.name}: {'ok' if ok else 'FAILED'}")
            failed |= not ok
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree to check")
    return run_gate(parser.parse_args().root.resolve())


if __name__ == "__main__":
    sys.exit(main())
