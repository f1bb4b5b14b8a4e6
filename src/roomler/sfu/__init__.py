"""Roomler's SFU: worker processes (`pool`), web-process proxies (`api`), protocol modules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roomler.sfu.api import Consumer, Producer, Router, WebRtcTransport, Worker
    from roomler.sfu.pool import WorkerPool

__all__ = ["Consumer", "Producer", "Router", "WebRtcTransport", "Worker", "WorkerPool"]


def __getattr__(name: str) -> Any:
    # Imported lazily: a worker process (`python -m roomler.sfu.worker`) needs none of these.
    if name == "WorkerPool":
        from roomler.sfu.pool import WorkerPool

        return WorkerPool
    if name in __all__:
        from roomler.sfu import api

        return getattr(api, name)
    raise AttributeError(f"module 'roomler.sfu' has no attribute {name!r}")
