"""What the benchmarks share: percentiles, a free port, the machine's CPU.

Each benchmark (`ws_fanout.py`, `cluster_fanout.py`, `join_storm.py`, `sfu_forward.py`) is
run as a script from the repository root (`.venv/bin/python benchmarks/NAME.py`), so this
module is imported by its plain name.
"""

from __future__ import annotations

import contextlib
import math
import socket
from collections.abc import Sequence
from pathlib import Path


def percentile(samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least `q` of them at or below it.

    `q` is a fraction (0.99 for p99); `samples` need not be sorted; none gives NaN.
    """
    if not samples:
        return math.nan
    ordered = sorted(samples)
    return float(ordered[max(0, math.ceil(q * len(ordered)) - 1)])


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown CPU" when it cannot be read)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"
