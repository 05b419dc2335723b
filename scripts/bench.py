#!/usr/bin/env python3
"""Benchmark: the license server's client calls against a bare grpc.aio server and the
minimal reference.

    python scripts/bench.py                      # full run, a few minutes
    python scripts/bench.py --json bench.json    # the same, also as JSON
    python scripts/bench.py --smoke              # tiny sizes, seconds (for the tests)
    python scripts/bench.py --strict             # exit 1 when a target is missed
    python scripts/bench.py --quick              # about a minute: empty call, minimal
                                                 # and real 6.x login, 16 and 64 callers
    python scripts/bench.py --instructions       # instructions per call (callgrind): empty
                                                 # call, minimal reference, real server
    python scripts/bench.py --overhead           # metrics and history on against off
    python scripts/bench.py --overhead --instructions  # the same in instructions (callgrind)
    python scripts/bench.py --propagation        # a change at one server seen at another,
                                                 # over PostgreSQL; against SQLite's

The command only: what a run measures, and the code, are in scripts/benchmark/.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.benchmark.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
