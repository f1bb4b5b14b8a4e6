"""Cluster fan-out: the WebSocket fan-out across 1, 2 and 3 `roomler serve` nodes.

One command (`python benchmarks/cluster_fanout.py`) runs, for each configuration:

- `1 node, no Redis`: one process as without `ROOMLER__REDIS__URL` (the reference);
- `1 node`, `2 nodes`, `3 nodes`: that many `python -m roomler serve` processes sharing
  one PostgreSQL database and one `redis-server` that this script starts on a free port.

The load is the same every time: `--groups` channels of `--group-size` members, each
member one WebSocket connection; member i of every channel connects to node i mod N, so
with N nodes (N-1)/N of the recipients of any broadcast are on another node than the
sender (member 0, on node 1). The event is `typing:start` (the server looks up the
channel's members and broadcasts to all but the sender). Users are seeded `invisible`
straight into the database, so connecting them sends no presence frames, and hold
tokens minted with the servers' JWT secret. The per-connection rate limit is lifted and
keepalive pings are rare (every 600 s).

1. **Latency**: channel 0's sender sends `--latency-count` events `--latency-interval`
   apart; each receiver stamps every frame when its read returns. The k-th frame a
   receiver gets belongs to the k-th event (a connection's frames stay in order), so
   latency = read time - send time on CLOCK_MONOTONIC, shared by all processes here.
2. **Throughput**: every channel's sender sends as fast as the cluster absorbs, with at
   most `--window` events outstanding (sent, not yet read by the channel's last member).
   Deliveries/s = frames read by all receivers during `--seconds` / seconds.
3. **CPU**: user+system time of `redis-server`, of the node processes and of PostgreSQL
   during the throughput phase (/proc/PID/stat), as % of one core and per delivery; and
   "other work", the CPU the rest of the machine used meanwhile (/proc/stat minus all of
   the above and the load generators).

The machine may be shared: each configuration is measured `--rounds` times (default 3)
and the round other work disturbed least is reported.

Load generators are `--procs` processes, each owning whole channels. Every wait is
bounded; everything stays on 127.0.0.1; the database and Redis are removed at the end.
Needs PostgreSQL (`--postgres`, default the machine's) and `redis-server` on PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from harness import (
    HOST,
    LoadProcesses,
    WsClient,
    cpu_secs,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    machine_busy_secs,
    machine_line,
    percentile,
    run_load_process,
    wait_for_quiet_machine,
    wait_http,
)

JWT_SECRET = "cluster-fanout-benchmark-secret-" + "x" * 16
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
CONFIGS = ("1-local", "1", "2", "3")  # "1-local": one node without Redis
START_SECS = 90.0
CONNECT_SECS = 120.0
PHASE_SECS = 120.0
WARMUP_SECS = 0.5
CONNECTS_IN_FLIGHT = 32
QUIET_SECS = 0.5  # a phase is over when no frame came for this long
# Before each configuration: wait until the machine is at most this busy (other work).
QUIET_BUSY = 0.15
QUIET_WAIT_SECS = 120.0
OTHER_CPU_WARN_PCT = 15.0


@dataclass(frozen=True)
class Plan:
    groups: int
    group_size: int
    procs: int
    latency_count: int
    latency_interval: float
    seconds: float
    window: int
    configs: tuple[str, ...]
    postgres: str
    rounds: int


def parse_args(argv: Sequence[str] | None) -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=8, help="channels (default 8)")
    parser.add_argument("--group-size", type=int, default=100, help="members each (100)")
    parser.add_argument("--procs", type=int, default=2, help="load processes (2)")
    parser.add_argument("--latency-count", type=int, default=50)
    parser.add_argument("--latency-interval", type=float, default=0.05)
    parser.add_argument("--seconds", type=float, default=5.0, help="throughput window (5)")
    parser.add_argument("--window", type=int, default=4, help="events in flight per channel")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="e.g. 1-local,1,2,3")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server to use")
    parser.add_argument(
        "--rounds", type=int, default=3, help="measure this often, keep the least disturbed"
    )
    parser.add_argument("--quick", action="store_true", help="4 x 50 members, 3 s")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--logs", type=Path, help="keep the nodes' logs in this directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.groups, args.group_size, args.seconds, args.latency_count = 4, 50, 3.0, 30
    configs = tuple(c.strip() for c in args.configs.split(",") if c.strip())
    for config in configs:
        if config not in CONFIGS:
            parser.error(f"unknown configuration {config!r}; choose from {', '.join(CONFIGS)}")
    if args.groups < args.procs or args.group_size < 2:
        parser.error("need at least one channel per load process and two members each")
    plan = Plan(
        args.groups,
        args.group_size,
        args.procs,
        args.latency_count,
        args.latency_interval,
        args.seconds,
        args.window,
        configs,
        args.postgres,
        max(1, args.rounds),
    )
    global JSON_OUT, LOGS
    JSON_OUT, LOGS = args.json, args.logs
    return plan


JSON_OUT: Path | None = None
LOGS: Path | None = None


# --- database -------------------------------------------------------------------------------


@dataclass
class Population:
    channels: list[str]
    members: list[list[str]]  # per channel: user ids, member 0 the sender
    tokens: dict[str, str]


async def seed(url: str, plan: Plan) -> Population:
    """Users (invisible), one tenant, `groups` channels and their memberships."""
    from sqlalchemy import insert

    from roomler.auth.tokens import TokenIssuer
    from roomler.db.engine import create_engine
    from roomler.db.models import Channel, ChannelMember, Tenant, TenantMember, User
    from roomler.ids import new_id

    issuer = TokenIssuer(JWT_SECRET, "roomler", 24 * 3600, 24 * 3600)
    members = [[new_id() for _ in range(plan.group_size)] for _ in range(plan.groups)]
    users = [u for group in members for u in group]
    channels = [new_id() for _ in range(plan.groups)]
    tenant = new_id()
    engine = create_engine(url)
    async with engine.begin() as db:
        await db.execute(
            insert(User),
            [
                {
                    "id": u,
                    "email": f"{u}@bench.example",
                    "username": f"u{u}",
                    "display_name": "Bench",
                    "password_hash": "!",  # nobody signs in: tokens are minted
                    "presence": "invisible",
                }
                for u in users
            ],
        )
        await db.execute(insert(Tenant).values(id=tenant, name="B", slug="b", owner_id=users[0]))
        await db.execute(
            insert(TenantMember),
            [{"id": new_id(), "tenant_id": tenant, "user_id": u, "role": "member"} for u in users],
        )
        await db.execute(
            insert(Channel),
            [
                {
                    "id": c,
                    "tenant_id": tenant,
                    "name": f"c{i}",
                    "path": f"c{i}",
                    "channel_type": "text",
                    "is_private": False,
                    "member_count": plan.group_size,
                    "created_by": users[0],
                }
                for i, c in enumerate(channels)
            ],
        )
        await db.execute(
            insert(ChannelMember),
            [
                {"id": new_id(), "tenant_id": tenant, "channel_id": c, "user_id": u}
                for c, group in zip(channels, members, strict=True)
                for u in group
            ],
        )
    await engine.dispose()
    tokens = {u: issuer.issue(u, "access") for u in users}
    return Population(channels, members, tokens)


# --- a lean WebSocket client (RFC 6455) -------------------------------------------------------


class CountingClient(WsClient):
    """harness.WsClient that counts (and optionally stamps) the frames after `connected`."""

    def __init__(self, path: str, port: int) -> None:
        super().__init__(path, port, self._text)
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.frames = 0
        self.stamps: list[int] | None = None
        self.on_frame: Any = None

    @property
    def closed(self) -> str | None:
        """Why the connection ended, if it did."""
        if self.close_code is not None and self.close_code >= 0:
            return f"close {self.close_code} {self.close_reason}".strip()
        return self.failure or None

    def _text(self, payload: bytes, now: int) -> None:
        if not self.ready.done():
            self.ready.set_result(None)  # the `connected` frame
            return
        self.frames += 1
        if self.stamps is not None:
            self.stamps.append(now)
        if self.on_frame is not None:
            self.on_frame()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f"connection lost: {self.failure or exc}"))


async def connect(port: int, token: str) -> CountingClient:
    loop = asyncio.get_running_loop()
    client = CountingClient(f"/ws?token={token}", port)
    await loop.create_connection(lambda: client, HOST, port)
    await asyncio.wait_for(client.ready, 30)
    return client


# --- load processes ---------------------------------------------------------------------------


@dataclass
class Channel:
    channel_id: str
    clients: list[CountingClient]  # member 0 sends

    def start_frame(self) -> dict[str, Any]:
        return {"type": "typing:start", "data": {"channel_id": self.channel_id}}


class Load:
    def __init__(self, channels: list[tuple[str, list[tuple[int, str]]]]) -> None:
        self.spec = channels
        self.channels: list[Channel] = []

    async def connect(self) -> None:
        limit = asyncio.Semaphore(CONNECTS_IN_FLIGHT)

        async def one(port: int, token: str) -> CountingClient:
            async with limit:
                return await connect(port, token)

        for channel_id, members in self.spec:
            clients = await asyncio.gather(*(one(port, token) for port, token in members))
            self.channels.append(Channel(channel_id, list(clients)))

    def check_open(self) -> None:
        """Fail the phase, saying why, if the server closed any connection."""
        reasons = [c.closed for ch in self.channels for c in ch.clients if c.closed]
        if reasons:
            raise RuntimeError(f"{len(reasons)} connections ended, e.g. {sorted(set(reasons))[:3]}")

    async def latency(self, count: int, interval: float) -> list[float]:
        """Milliseconds per delivery of `count` events of the first channel's sender."""
        if not self.channels:
            return []
        await self.quiet()
        channel = self.channels[0]
        receivers = channel.clients[1:]
        for client in receivers:
            client.stamps = []
        sent: list[int] = []
        for _ in range(count):
            sent.append(time.monotonic_ns())
            channel.clients[0].send_json(channel.start_frame())
            await asyncio.sleep(interval)
        deadline = time.monotonic() + PHASE_SECS
        while any(len(c.stamps or ()) < count for c in receivers):
            self.check_open()
            if time.monotonic() > deadline:
                raise RuntimeError("latency events were lost")
            await asyncio.sleep(0.01)
        latencies = [
            (stamp - sent[k]) / 1e6 for c in receivers for k, stamp in enumerate(c.stamps or ())
        ]
        for client in receivers:
            client.stamps = None
        return latencies

    async def throughput(self, seconds: float, window: int) -> int:
        """Frames read by every receiver during `seconds`, after a warm-up."""
        stop = asyncio.Event()
        drivers = [self._drive(channel, window, stop) for channel in self.channels]
        tasks = [asyncio.ensure_future(driver) for driver in drivers]
        await asyncio.sleep(WARMUP_SECS)
        before = self._frames()
        await asyncio.sleep(seconds)
        after = self._frames()
        stop.set()
        await asyncio.gather(*tasks)
        await self.quiet()  # let the in-flight events land before the next phase
        self.check_open()
        return after - before

    async def quiet(self) -> None:
        """Wait (bounded) until no frame arrived for `QUIET_SECS`."""
        deadline = time.monotonic() + PHASE_SECS
        seen = -1
        while seen != self._frames() and time.monotonic() < deadline:
            seen = self._frames()
            await asyncio.sleep(QUIET_SECS)

    async def _drive(self, channel: Channel, window: int, stop: asyncio.Event) -> None:
        sender, tail = channel.clients[0], channel.clients[-1]
        frame = channel.start_frame()
        # Outstanding = sent in this phase - read by the tail in this phase.
        sent = 0
        read_before = tail.frames
        wake = asyncio.Event()
        tail.on_frame = wake.set
        try:
            while not stop.is_set():
                while sent - (tail.frames - read_before) < window:
                    sender.send_json(frame)
                    sent += 1
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), 1.0)
        finally:
            tail.on_frame = None

    def _frames(self) -> int:
        return sum(c.frames for channel in self.channels for c in channel.clients[1:])

    def close(self) -> None:
        for channel in self.channels:
            for client in channel.clients:
                if client.transport is not None:
                    client.transport.close()


def load_main(pipe: Pipe, spec: list[tuple[str, list[tuple[int, str]]]]) -> None:
    """A load process: connect, then run the phases the parent asks for."""

    async def loaded() -> Callable[[str, Any], Awaitable[Any]]:
        load = Load(spec)

        async def handle(command: str, payload: Any) -> Any:
            if command == "connect":
                await load.connect()
                return "connected"
            if command == "latency":
                return await load.latency(*payload)
            if command == "throughput":
                return await load.throughput(*payload)
            load.close()
            return "closed"

        return handle

    run_load_process(pipe, loaded)


# --- processes we start -------------------------------------------------------------------------


def postgres_cpu_secs() -> float:
    """CPU seconds of every PostgreSQL process on this machine (0 if it is elsewhere)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if (entry / "comm").read_text().startswith("postgres"):
                total += cpu_secs(int(entry.name))
    return total


class RedisServer:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed")
        self.port = free_port(HOST)
        command = [binary, "--port", str(self.port), "--bind", HOST, "--save", ""]
        command += ["--appendonly", "no", "--dir", str(workdir)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_port(self.port, self.process)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def wait_port(port: int, process: subprocess.Popen[bytes], secs: float = START_SECS) -> None:
    deadline = time.monotonic() + secs
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args} exited with {process.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection((HOST, port), 1).close()
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listens on port {port}")
        time.sleep(0.05)


@dataclass
class Nodes:
    ports: list[int]
    processes: list[subprocess.Popen[bytes]]

    def cpu_secs(self) -> float:
        return sum(cpu_secs(p.pid) for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def start_nodes(count: int, redis_url: str | None, db_url: str, workdir: Path) -> Nodes:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROOMLER__")}
    env.update(
        {
            "ROOMLER__DATABASE__URL": db_url,
            "ROOMLER__JWT__SECRET": JWT_SECRET,
            "ROOMLER__WS__RATE_PER_SEC": "1000000",
            "ROOMLER__WS__RATE_BURST": "1000000",
            "ROOMLER__WS__PER_MESSAGE_DEFLATE": "false",
            "ROOMLER__TYPING__TIMEOUT_SECS": "3600",
            # Keepalive pings are not what we measure; on a shared, saturated machine a
            # starved load generator could miss one and lose its connection (1011).
            "ROOMLER__WS__PING_INTERVAL_SECS": "600",
            "ROOMLER__WS__PING_TIMEOUT_SECS": "1200",
        }
    )
    prefix = f"bench-{secrets.token_hex(3)}:"
    ports, processes = [], []
    for index in range(count):
        node_env = dict(env)
        if redis_url is not None:
            node_env["ROOMLER__REDIS__URL"] = redis_url
            node_env["ROOMLER__REDIS__KEY_PREFIX"] = prefix
            node_env["ROOMLER__REDIS__NODE_ID"] = f"bench{index + 1}"
        port = free_port(HOST)
        log = (workdir / f"node{index + 1}-{port}.log").open("ab")
        command = [sys.executable, "-m", "roomler", "serve", "--host", HOST, "--port", str(port)]
        processes.append(
            subprocess.Popen(command, cwd=workdir, env=node_env, stdout=log, stderr=log)
        )
        log.close()
        ports.append(port)
    nodes = Nodes(ports, processes)
    try:
        for port, process in zip(ports, processes, strict=True):
            wait_http(f"http://{HOST}:{port}/health", process, START_SECS, None)
    except BaseException:
        nodes.stop()
        raise
    return nodes


# --- one configuration --------------------------------------------------------------------------


@dataclass
class Result:
    config: str
    nodes: int
    connections: int
    latency_p50_ms: float
    latency_p99_ms: float
    deliveries_per_sec: float
    redis_cpu_pct: float
    nodes_cpu_pct: float
    postgres_cpu_pct: float
    machine_busy_pct: float
    other_cpu_pct: float
    busy_before_pct: float


def run_config(
    config: str, plan: Plan, population: Population, db_url: str, redis: RedisServer, work: Path
) -> Result:
    count = int(config.split("-")[0])
    redis_url = None if config.endswith("local") else redis.url
    cpus = os.cpu_count() or 1
    busy = wait_for_quiet_machine(QUIET_WAIT_SECS, QUIET_BUSY * cpus) / cpus
    nodes = start_nodes(count, redis_url, db_url, work)
    specs = [
        [
            (
                population.channels[g],
                [
                    (nodes.ports[i % count], population.tokens[user])
                    for i, user in enumerate(population.members[g])
                ],
            )
            for g in range(proc, plan.groups, plan.procs)
        ]
        for proc in range(plan.procs)
    ]
    load = LoadProcesses(load_main, [(spec,) for spec in specs])
    try:
        load.ask("connect", None, CONNECT_SECS)
        time.sleep(1.0)  # arrivals settle

        rounds = [
            measure_round(config, count, redis_url, plan, load, nodes, redis, busy)
            for _ in range(plan.rounds)
        ]
        # The round other work disturbed least (the machine is shared).
        return min(rounds, key=lambda r: r.other_cpu_pct)
    finally:
        load.close(10)
        nodes.stop()


def measure_round(
    config: str,
    count: int,
    redis_url: str | None,
    plan: Plan,
    load: LoadProcesses,
    nodes: Nodes,
    redis: RedisServer,
    busy: float,
) -> Result:
    """One latency phase, then one throughput phase with the CPU it cost."""
    latency = (plan.latency_count, plan.latency_interval)
    latencies: list[float] = load.ask_one(0, "latency", latency, PHASE_SECS)

    redis_before, nodes_before = cpu_secs(redis.process.pid), nodes.cpu_secs()
    pg_before, machine_before = postgres_cpu_secs(), machine_busy_secs()
    cpus = os.cpu_count() or 1
    load_before = load.cpu_secs()
    started = time.monotonic()
    delivered = sum(load.ask("throughput", [(plan.seconds, plan.window)] * plan.procs, PHASE_SECS))
    elapsed = time.monotonic() - started
    redis_cpu = cpu_secs(redis.process.pid) - redis_before
    nodes_cpu = nodes.cpu_secs() - nodes_before
    pg_cpu = postgres_cpu_secs() - pg_before
    machine_cpu = machine_busy_secs() - machine_before
    load_cpu = load.cpu_secs() - load_before
    other_cpu = machine_cpu - redis_cpu - nodes_cpu - pg_cpu - load_cpu
    return Result(
        config,
        count,
        plan.groups * plan.group_size,
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        delivered / plan.seconds,
        100 * redis_cpu / elapsed if redis_url else 0.0,
        100 * nodes_cpu / elapsed,
        100 * pg_cpu / elapsed,
        100 * machine_cpu / elapsed / cpus,
        100 * max(0.0, other_cpu) / elapsed,
        100 * busy,
    )


# --- report -------------------------------------------------------------------------------------


def per_delivery(cpu_pct: float, result: Result) -> float:
    """CPU microseconds per delivery, from a % of one core at the measured rate."""
    if result.deliveries_per_sec <= 0:
        return float("nan")
    return cpu_pct / 100 / result.deliveries_per_sec * 1e6


def report(results: list[Result], plan: Plan) -> str:
    lines = [
        f"Machine: {machine_line()}",
        f"Load: {plan.groups} channels x {plan.group_size} members = "
        f"{plan.groups * plan.group_size} connections, typing:start, "
        f"window {plan.window}, {plan.seconds:g} s; latency over {plan.latency_count} events; "
        f"best of {plan.rounds} rounds (least other work)",
        "",
        "| configuration | deliveries/s | p50 ms | p99 ms | Redis CPU | nodes CPU "
        "| nodes µs/delivery | Redis µs/delivery | PostgreSQL CPU | machine busy | other work |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        name = "1 node, no Redis" if r.config.endswith("local") else f"{r.nodes} node(s) + Redis"
        lines.append(
            f"| {name} | {r.deliveries_per_sec:,.0f} | {r.latency_p50_ms:.2f} | "
            f"{r.latency_p99_ms:.2f} | {r.redis_cpu_pct:.0f} % | {r.nodes_cpu_pct:.0f} % | "
            f"{per_delivery(r.nodes_cpu_pct, r):.1f} | {per_delivery(r.redis_cpu_pct, r):.2f} | "
            f"{r.postgres_cpu_pct:.0f} % | {r.machine_busy_pct:.0f} % | {r.other_cpu_pct:.0f} % |"
        )
    if any(r.other_cpu_pct > OTHER_CPU_WARN_PCT for r in results):
        lines.append(
            f"\nWARNING: other work used more than {OTHER_CPU_WARN_PCT:.0f} % of a core during "
            "some throughput phases ('other work'); those figures are not comparable."
        )
    lines.append(
        "\nRedis, nodes (all node processes) and PostgreSQL CPU: % of one core during the "
        "throughput phase; machine busy: % of all CPUs then (load generators included); "
        "other work: % of one core used by processes that are not part of the benchmark."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    from roomler.db.migrate import upgrade

    db_url = asyncio.run(create_postgres_database(plan.postgres))
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="cluster-fanout-") as tmp:
        work = Path(tmp)
        if LOGS is not None:
            LOGS.mkdir(parents=True, exist_ok=True)
            work = LOGS
        redis = RedisServer(work)
        try:
            upgrade(db_url)
            population = asyncio.run(seed(db_url, plan))
            for config in plan.configs:
                print(f"running {config} ...", file=sys.stderr, flush=True)
                results.append(run_config(config, plan, population, db_url, redis, work))
        finally:
            redis.stop()
            asyncio.run(drop_postgres_database(plan.postgres, db_url))
    print(report(results, plan))
    if JSON_OUT is not None:
        JSON_OUT.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
