"""The load and chaos tool (issue 13): ``make bench-load`` and ``make chaos`` run it from the venv.

    .venv/bin/python benchmarks/load_chaos.py bench --calls 10000 --in-flight 10000
    .venv/bin/python benchmarks/load_chaos.py chaos --scenarios baseline,worker_kill,leader_loss

Starts the service as separate processes on loopback (nats-server or a 3-node cluster, ``returnbridge
simulate``, ``serve`` gateway processes and ``worker`` processes), drives the load with a probe client,
injects each scenario's fault, then checks every return against the ERP simulators, the sync state and the
audit log. Writes one JSON and one PNG per run (``--out``); exits 1 when any scenario is not clean.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Children are fork+exec'ed while gRPC channels are live; grpc's fork handlers are unsafe then and unneeded.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from load.cli import main

if __name__ == "__main__":
    sys.exit(main())
