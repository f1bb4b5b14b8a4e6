"""Roomler's SFU, a library of its own: it imports nothing of roomler outside ``roomler.sfu``.

What a caller needs is exported here: the worker processes (``WorkerPool``,
``pool.py``), the web-process proxies of the engine's objects (``Worker``,
``Router``, ``WebRtcTransport``, ``PipeTransport``, ``Producer``, ``Consumer``,
``proxies.py``; ``Router.pipe_to_router`` joins two routers)
and the errors their calls raise (``InvalidStateError`` for a closed proxy, the
``ChannelError`` family for a request the worker failed or never answered).
The media engine that runs inside a worker is ``roomler.sfu.engine``; the
protocol modules (``ice``, ``dtls``, ``srtp``, ``rtp``, ``rtcp``) are sans-I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from roomler.sfu.channel import (
        ChannelClosedError,
        ChannelError,
        RequestFailedError,
        RequestTimeoutError,
    )
    from roomler.sfu.pool import WorkerPool, WorkerPoolSettings
    from roomler.sfu.proxies import (
        Consumer,
        InvalidStateError,
        PipeToRouterResult,
        PipeTransport,
        Producer,
        Router,
        WebRtcTransport,
        Worker,
    )

_EXPORTS = {
    "ChannelClosedError": "roomler.sfu.channel",
    "ChannelError": "roomler.sfu.channel",
    "RequestFailedError": "roomler.sfu.channel",
    "RequestTimeoutError": "roomler.sfu.channel",
    "WorkerPool": "roomler.sfu.pool",
    "WorkerPoolSettings": "roomler.sfu.pool",
    "Consumer": "roomler.sfu.proxies",
    "InvalidStateError": "roomler.sfu.proxies",
    "PipeToRouterResult": "roomler.sfu.proxies",
    "PipeTransport": "roomler.sfu.proxies",
    "Producer": "roomler.sfu.proxies",
    "Router": "roomler.sfu.proxies",
    "WebRtcTransport": "roomler.sfu.proxies",
    "Worker": "roomler.sfu.proxies",
}

__all__ = [
    "ChannelClosedError",
    "ChannelError",
    "Consumer",
    "InvalidStateError",
    "PipeToRouterResult",
    "PipeTransport",
    "Producer",
    "RequestFailedError",
    "RequestTimeoutError",
    "Router",
    "WebRtcTransport",
    "Worker",
    "WorkerPool",
    "WorkerPoolSettings",
]


def __getattr__(name: str) -> Any:
    # Imported lazily: a worker process (`python -m roomler.sfu.worker`) needs none of these.
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'roomler.sfu' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module_name), name)
