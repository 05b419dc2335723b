"""Benchmark: the license server's client calls against a bare grpc.aio server and the
minimal reference.

One run, on this machine, with every server in a process of its own:

- a bare grpc.aio server answering an empty unary call: the baseline;
- the minimal reference (scripts/bench_load.py serve-minimal): a bare grpc.aio server
  whose Login does a login's work in the plainest way, with as many users and seats as
  the large database;
- the real `officestatus-server` on a prepared database of 100 users, and one of 100,000
  users and 1,000 installed licenses (written through the storage API before it starts).

One load generator (scripts/bench_load.py, a process of its own) drives each in turn
with N concurrent callers, prepared request bytes, a warm-up and a measured window; the
rows take turns in interleaved rounds, so a noisy machine's slow moments fall on all. The
report gives throughput and p50/p99 latency of the empty call, a 3.x login, a 6.x login,
a 5.x heartbeat and GetLicenseStatus, each as a ratio to the baseline; the minimal
reference's 6.x login, 3.x login and 5.x heartbeat as rows of their own, and each real
server's login and heartbeat as a ratio to the minimal reference's same row too
(throughput, p99, CPU per call); the server's CPU per call; the start-up time, memory,
enabling 10,000 users one call at a time and in one call, and the status call at 100,000
users; and each target, met or not. For reference (not a target) it also measures two
calls to the bare server, the empty call with protobuf messages and 6.x login requests
answered with a constant login-sized reply, and the 6.x login against each.

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

Run it from the checkout with the project's virtual environment (the server command is
found next to this Python). Traffic goes to 127.0.0.1 only; every process it starts is
stopped at the end. Exit codes: 0 done, 1 a target missed (only with --strict), 2 error.

The modules, in the order a run uses them: `plan` (sizes and durations, the full run's
and --quick's), `machine` (what the run is on; a process's CPU and memory), `database`
(the prepared databases), `children` (the processes it starts), `workloads` (the calls and
their checks), `measure` (one load generator run; the rows and their ratios), `scale` (the
admin calls at size), `targets`, `report` (the printed figures), `run` (the whole run, and
--quick's part of it), `cli` (the command, scripts/bench.py). `overhead` is --overhead's
run; `instructions` counts a server's instructions per call under callgrind (any server
command, any workload); `reference_instructions` is --instructions' run on it (the empty
call, the minimal reference, the real server), and `overhead_instructions` --overhead
--instructions'. `propagation` is --propagation's run (two servers over a PostgreSQL of its
own, and one on SQLite).
"""

from __future__ import annotations

from pathlib import Path

# The checkout: the load generator's script is in it, and git reports its version.
ROOT = Path(__file__).resolve().parents[2]


class BenchError(Exception):
    """Something went wrong: the run cannot be trusted."""
