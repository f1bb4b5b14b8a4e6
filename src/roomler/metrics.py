"""Prometheus metrics of one server process (`GET /metrics`, off by default).

Each application gets its own `CollectorRegistry` (tests build many apps in one process).
Counters and histograms are updated where the event happens (an HTTP response, a
WebSocket close); gauges that describe a state (connections open, database pool in use,
event-loop lag) are read at scrape time or sampled by a small background task.

Per-frame figures never call prometheus_client: the WebSocket path adds one to plain
integers (`realtime/counters.py`) that `WsTrafficCollector` reads at scrape time. The SFU
workers are separate processes: at scrape time the web process asks each one over its
channel (`worker.get_metrics`, all at once, bounded by `SFU_TIMEOUT_SECS`;
`SfuCollector.refresh`). Asking then, rather than having workers push periodic stats
events, keeps the channel quiet when nobody scrapes and gives figures as of the scrape;
a worker that does not answer in time is reported as not alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import Scope

from roomler.realtime.counters import WsCounters

if TYPE_CHECKING:
    from roomler.cluster.link import RedisLink
    from roomler.sfu.pool import WorkerPool
    from roomler.sfu.validation import JsonObject

# Event-loop lag: how late a sleep of LAG_INTERVAL_SECS wakes up. A stall of D seconds
# shows as a sample of at least D - LAG_INTERVAL_SECS; 40 wake-ups a second cost ~0.1 %
# of a core. The gauge holds the largest sample of each LAG_WINDOW_SECS.
LAG_INTERVAL_SECS = 0.025
LAG_WINDOW_SECS = 1.0
LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# HTTP latency buckets (seconds): API calls are milliseconds; argon2 logins ~0.1-0.5 s.
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
UNMATCHED = "unmatched"
# How long a scrape waits for the SFU workers' answers.
SFU_TIMEOUT_SECS = 2.0


@dataclass
class StateReaders:
    """What the scrape-time gauges read; None: not part of this process."""

    open_connections: Callable[[], int]
    pool_in_use: Callable[[], int | None]
    sfu_workers_alive: Callable[[], int]
    redis_link_up: Callable[[], bool] | None = None
    redis_pending: Callable[[], int] | None = None


class ServerMetrics:
    def __init__(self, state: StateReaders) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.http_requests = Counter(
            "roomler_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "roomler_http_request_duration_seconds",
            "Time from request to the end of the response, by method and route template.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=self.registry,
        )
        self.ws_closes = Counter(
            "roomler_websocket_closes",
            "WebSocket connections ended, by close code (RFC 6455 section 7.4; 'none': no code).",
            ["code"],
            registry=self.registry,
        )
        self.loop_lag = Gauge(
            "roomler_event_loop_lag_seconds",
            f"How late the event loop woke a {LAG_INTERVAL_SECS} s sleep: the largest sample "
            f"of the last {LAG_WINDOW_SECS:g} s.",
            registry=self.registry,
        )
        self.loop_lag_max = Gauge(
            "roomler_event_loop_lag_max_seconds",
            "The largest event-loop lag sample since the process started.",
            registry=self.registry,
        )
        self.loop_lag_samples = Histogram(
            "roomler_event_loop_lag_samples_seconds",
            f"Every event-loop lag sample ({1 / LAG_INTERVAL_SECS:g} a second): a stall shows "
            "in the buckets above 0.1 s.",
            buckets=LAG_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(state))
        self._lag_task: asyncio.Task[None] | None = None
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    def add(
        self, collector: Collector, refresh: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Register a collector; `refresh()` is awaited before each scrape renders."""
        self.registry.register(collector)
        if refresh is not None:
            self._refreshers.append(refresh)

    async def refresh(self) -> None:
        for refresh in self._refreshers:
            await refresh()

    def observe_http(self, scope: Scope, status: int, seconds: float) -> None:
        template = route_template(scope)
        method = scope["method"]
        self.http_requests.labels(method, template, str(status)).inc()
        self.http_duration.labels(method, template).observe(seconds)

    def websocket_closed(self, code: int | None) -> None:
        self.ws_closes.labels("none" if code is None else str(code)).inc()

    def start(self) -> None:
        self._lag_task = asyncio.create_task(self._sample_lag())

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lag_task

    async def _sample_lag(self) -> None:
        window_end = time.monotonic() + LAG_WINDOW_SECS
        window_max = largest = 0.0
        while True:
            before = time.monotonic()
            await asyncio.sleep(LAG_INTERVAL_SECS)
            now = time.monotonic()
            lag = max(0.0, now - before - LAG_INTERVAL_SECS)
            self.loop_lag_samples.observe(lag)
            window_max = max(window_max, lag)
            if lag > largest:
                largest = lag
                self.loop_lag_max.set(lag)
            if now >= window_end:
                self.loop_lag.set(window_max)
                window_max = 0.0
                window_end = now + LAG_WINDOW_SECS


def route_template(scope: Scope) -> str:
    """The matched route's path template, with the prefix it was included under.

    A label per template, never per path (ids would make one series per user). FastAPI
    leaves the route's own template in `scope["route"]`; the include prefix (`/api`) is
    the leading segments of the request path that the template does not cover.
    """
    template: str | None = getattr(scope.get("route"), "path", None)
    if not template:
        return UNMATCHED
    if ":path}" in template:  # a catch-all (the web client): its own template says it all
        return template
    path: str = scope["path"]
    extra = path.rstrip("/").count("/") - template.rstrip("/").count("/")
    prefix = "/".join(path.split("/")[: extra + 1]) if extra > 0 else ""
    return prefix + template


class _StateCollector(Collector):
    """Gauges read when Prometheus scrapes: the state of the process right now."""

    def __init__(self, state: StateReaders) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        state = self.state
        yield _gauge(
            "websocket_connections", "WebSocket connections open now.", state.open_connections()
        )
        in_use = state.pool_in_use()
        if in_use is not None:
            yield _gauge(
                "db_pool_connections_in_use",
                "Database connections checked out of the pool now.",
                in_use,
            )
        yield _gauge(
            "sfu_workers_alive",
            "SFU worker processes alive (0 until the first conference or /ready).",
            state.sfu_workers_alive(),
        )
        if state.redis_link_up is not None:
            yield _gauge(
                "redis_link_up",
                "1 while this node's link to Redis is up.",
                1 if state.redis_link_up() else 0,
            )
        if state.redis_pending is not None:
            yield _gauge(
                "redis_pending_commands",
                "Redis commands waiting to be sent.",
                state.redis_pending(),
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"roomler_{name}", documentation, value=value)


class WsTrafficCollector(Collector):
    """WebSocket frames and deliveries, from the plain integers of `WsCounters`."""

    def __init__(self, counters: WsCounters) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        counters = self.counters
        yield CounterMetricFamily(
            "roomler_websocket_frames_in", "WebSocket frames read from clients.", counters.frames_in
        )
        yield CounterMetricFamily(
            "roomler_websocket_frames_out",
            "WebSocket frames written to sockets (at once or by the writer task).",
            counters.frames_out,
        )
        yield CounterMetricFamily(
            "roomler_websocket_deliveries",
            "Frames handed to a connection (written at once or queued).",
            counters.deliveries,
        )


class RedisTrafficCollector(Collector):
    """Several nodes: what went through this node's Redis link."""

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def collect(self) -> Iterator[Metric]:
        link = self.link
        yield CounterMetricFamily(
            "roomler_redis_commands_sent",
            "Commands written to Redis (PUBLISHes, scripts, ...).",
            link.commands_sent,
        )
        yield CounterMetricFamily(
            "roomler_redis_envelopes_in",
            "Envelopes received from other nodes on this node's channel.",
            link.messages_received,
        )
        yield CounterMetricFamily(
            "roomler_redis_commands_dropped",
            "Commands refused because the queue was full.",
            link.dropped,
        )


# The SFU totals a worker reports (sfu/engine/metrics.py): metric name, help, report key.
SFU_COUNTERS = (
    ("rtp_packets_in", "RTP packets received by the worker's transports.", "rtp_packets_in"),
    ("rtp_bytes_in", "Bytes received by the worker's transports.", "rtp_bytes_in"),
    ("rtp_packets_out", "Packets (RTP and RTCP) sent by the worker's transports.", "packets_out"),
    ("rtp_bytes_out", "Bytes sent by the worker's transports.", "bytes_out"),
    ("nacks_received", "NACKs received from receivers.", "nacks_received"),
    ("plis_received", "PLIs received from receivers.", "plis_received"),
)
SFU_GAUGES = (
    ("routers", "Routers in the worker.", "routers"),
    ("transports", "WebRTC transports in the worker.", "transports"),
    ("producers", "Producers in the worker.", "producers"),
    ("consumers", "Consumers in the worker.", "consumers"),
    ("send_bitrate_bps", "Current send bitrate of the worker's transports.", "send_bitrate"),
)


class SfuCollector(Collector):
    """Each SFU worker's figures, as fetched by `refresh()` just before the scrape renders."""

    def __init__(self, started_pool: Callable[[], WorkerPool | None]) -> None:
        self.started_pool = started_pool
        self.reports: list[tuple[int, JsonObject | None]] = []

    async def refresh(self) -> None:
        pool = self.started_pool()  # a scrape does not start the pool
        self.reports = [] if pool is None else await pool.worker_metrics(SFU_TIMEOUT_SECS)

    def collect(self) -> Iterator[Metric]:
        labels = ("worker",)
        alive = GaugeMetricFamily(
            "roomler_sfu_worker_alive", "1 when the worker answered this scrape.", labels=labels
        )
        cpu = CounterMetricFamily(
            "roomler_sfu_cpu_seconds", "CPU time of the worker process.", labels=labels
        )
        lost = CounterMetricFamily(
            "roomler_sfu_packets_lost",
            "Packets lost: in = missing from senders, out = reported lost by receivers.",
            labels=("worker", "direction"),
        )
        counters = {
            key: CounterMetricFamily(f"roomler_sfu_{name}", text, labels=labels)
            for name, text, key in SFU_COUNTERS
        }
        gauges = {
            key: GaugeMetricFamily(f"roomler_sfu_{name}", text, labels=labels)
            for name, text, key in SFU_GAUGES
        }
        for index, report in self.reports:
            worker = str(index)
            alive.add_metric((worker,), 0 if report is None else 1)
            if report is None:
                continue
            cpu.add_metric((worker,), report["cpu_seconds"])
            lost.add_metric((worker, "in"), report["packets_lost_in"])
            lost.add_metric((worker, "out"), report["packets_lost_out"])
            for key, counter in counters.items():
                counter.add_metric((worker,), report[key])
            for key, gauge in gauges.items():
                gauge.add_metric((worker,), report[key])
        yield from (alive, cpu, lost, *counters.values(), *gauges.values())
