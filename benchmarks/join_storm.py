"""Join storm: N browser tabs join one conference at the same instant.

One command (`python benchmarks/join_storm.py --clients 10,50,100`) runs, for each N:

1. `python -m roomler serve` as a subprocess on 127.0.0.1 with a fresh SQLite database
   seeded with N users in one tenant (rows written directly, access tokens minted with
   the server's JWT secret: no argon2 at run time), `--workers` SFU worker processes and
   an RTC port range of its own;
2. the conference is created and started over REST (the first start forks the workers:
   reported as `cold_start_ms`); N WebSocket clients connect;
3. **join**: every client sends `media:join` at once; a client's latency runs from its
   send to its `media:transport_created` (two WebRTC transports, i.e. two UDP ports, per
   client);
4. **produce** (`--produce`): every client produces one audio track (Chrome's RTP
   parameters from tests/sfu/fixtures) at once; measured until every client has heard
   the N-1 `media:new_producer` events of the others (N*(N-1) notifications);
5. **consume** (`--consume`): every client consumes every other client's producer;
   measured until all N*(N-1) `media:consumer_created` replies are in;
6. **leave**: every client closes its WebSocket at once; measured until the server has
   released every UDP port of the range (read from /proc/net/udp): nothing is left behind.

Also reported: the resident memory of the web process and of its workers after the
joins. Every wait is bounded; all traffic stays on 127.0.0.1. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from websockets.asyncio.client import ClientConnection, connect

from roomler.auth.tokens import TokenIssuer
from roomler.db.migrate import upgrade
from roomler.db.models import Tenant, TenantMember, User
from roomler.ids import new_id

HOST = "127.0.0.1"
JWT_SECRET = "join-storm-benchmark-secret-" + "x" * 16  # >= 32 bytes (RFC 7518 section 3.2)
FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "sfu" / "fixtures"
START_TIMEOUT = 30.0
STEP_TIMEOUT = 120.0


@dataclass
class Phase:
    wall_ms: float
    per_client_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class Result:
    clients: int
    workers: int
    cold_start_ms: float
    join: Phase
    produce: Phase | None
    consume: Phase | None
    leave_ms: float
    ports_left: int
    web_rss_mb: float
    workers_rss_mb: float


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(at(0.95), 1),
        "p99": round(at(0.99), 1),
        "max": round(ordered[-1], 1),
    }


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# --- the server --------------------------------------------------------------------------


def seed(database_url: str, count: int) -> tuple[str, list[str]]:
    """A tenant with `count` users (the first one owns it); returns (tenant id, user ids)."""
    upgrade(database_url)
    engine = create_engine(database_url.replace("+aiosqlite", ""))
    user_ids = [new_id() for _ in range(count)]
    tenant_id = new_id()
    with Session(engine) as session:
        for index, user_id in enumerate(user_ids):
            session.add(
                User(
                    id=user_id,
                    email=f"user{index}@bench.example",
                    username=f"user{index}",
                    display_name=f"User {index}",
                    password_hash="!unusable",
                )
            )
        session.flush()
        session.add(
            Tenant(id=tenant_id, name="Bench", slug=f"bench-{tenant_id}", owner_id=user_ids[0])
        )
        session.flush()
        for index, user_id in enumerate(user_ids):
            role = "owner" if index == 0 else "member"
            session.add(TenantMember(tenant_id=tenant_id, user_id=user_id, role=role))
        session.commit()
    engine.dispose()
    return tenant_id, user_ids


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    rtc_ports: tuple[int, int]

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(directory: Path, database_url: str, workers: int, clients: int) -> Server:
    port = free_tcp_port()
    rtc_min = 50000
    rtc_max = rtc_min + max(4 * clients + 100, 1000)
    env = {
        **os.environ,
        "ROOMLER__APP__HOST": HOST,
        "ROOMLER__APP__PORT": str(port),
        "ROOMLER__APP__DATA_DIR": str(directory / "data"),
        "ROOMLER__DATABASE__URL": database_url,
        "ROOMLER__JWT__SECRET": JWT_SECRET,
        "ROOMLER__MEDIASOUP__NUM_WORKERS": str(workers),
        "ROOMLER__MEDIASOUP__LISTEN_IP": HOST,
        "ROOMLER__MEDIASOUP__RTC_MIN_PORT": str(rtc_min),
        "ROOMLER__MEDIASOUP__RTC_MAX_PORT": str(rtc_max),
        # Generous limits: the storm is the point, not the rate limiter.
        "ROOMLER__WS__RATE_PER_SEC": "1000",
        "ROOMLER__WS__RATE_BURST": "100000",
        "ROOMLER__WS__SEND_QUEUE_FRAMES": "100000",
    }
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "roomler", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    server = Server(process, port, (rtc_min, rtc_max))
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: see {directory / 'server.log'}")
        try:
            with urllib.request.urlopen(f"{server.base}/health", timeout=1) as response:
                if response.status == 200:
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("the server did not start")
        time.sleep(0.05)


def rest(server: Server, token: str, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{server.base}/api{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=STEP_TIMEOUT) as response:
        return json.loads(response.read())


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def bound_udp_ports(low: int, high: int) -> int:
    """How many UDP sockets on this machine are bound to a port in low..high."""
    count = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            port = int(line.split()[1].rsplit(":", 1)[1], 16)
            count += low <= port <= high
    return count


# --- clients -----------------------------------------------------------------------------


@dataclass
class Tab:
    """One WebSocket client: frames are collected by a reader task."""

    name: str
    ws: ClientConnection
    frames: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    async def read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if str(frame.get("type", "")).startswith("media:"):
                await self.frames.put(frame)

    async def send(self, message_type: str, data: dict[str, Any], request_id: str) -> None:
        await self.ws.send(
            json.dumps({"type": message_type, "data": data, "request_id": request_id})
        )

    async def expect(self, message_type: str) -> dict[str, Any]:
        frame = await asyncio.wait_for(self.frames.get(), STEP_TIMEOUT)
        if frame["type"] == "media:error":
            raise RuntimeError(f"{self.name}: {frame['data']}")
        if frame["type"] != message_type:
            raise RuntimeError(f"{self.name}: expected {message_type}, got {frame}")
        return frame


async def open_tab(server: Server, name: str, token: str) -> Tab:
    ws = await connect(f"ws://{HOST}:{server.port}/ws?token={token}", max_size=None)
    first = json.loads(await asyncio.wait_for(ws.recv(), STEP_TIMEOUT))
    assert first["type"] == "connected", first
    tab = Tab(name, ws)
    tab.reader = asyncio.create_task(tab.read())
    return tab


async def timed(tabs: list[Tab], step: Any) -> Phase:
    """Run `step(tab)` for every tab at once; per-tab and overall milliseconds."""

    async def one(tab: Tab) -> tuple[str, float]:
        began = time.perf_counter()
        await step(tab)
        return tab.name, (time.perf_counter() - began) * 1000

    began = time.perf_counter()
    results = await asyncio.gather(*(one(tab) for tab in tabs))
    return Phase((time.perf_counter() - began) * 1000, dict(results))


async def storm(
    server: Server, tenant_id: str, tokens: list[str], *, produce: bool, consume: bool, workers: int
) -> Result:
    owner = tokens[0]
    began = time.perf_counter()
    conference = await asyncio.to_thread(
        rest, server, owner, "POST", f"/tenant/{tenant_id}/conference", {"subject": "Storm"}
    )
    conference_id = conference["id"]
    await asyncio.to_thread(
        rest, server, owner, "POST", f"/tenant/{tenant_id}/conference/{conference_id}/start"
    )
    cold_start_ms = (time.perf_counter() - began) * 1000
    tabs = list(
        await asyncio.gather(*(open_tab(server, f"tab{i}", t) for i, t in enumerate(tokens)))
    )
    ids = {"conference_id": conference_id}

    async def join(tab: Tab) -> None:
        await tab.send("media:join", ids, "join")
        await tab.expect("media:router_capabilities")
        await tab.expect("media:transport_created")

    join_phase = await timed(tabs, join)
    pids = children(server.process.pid)
    web_rss, workers_rss = rss_mb(server.process.pid), sum(rss_mb(pid) for pid in pids)

    produce_phase = consume_phase = None
    announced: dict[str, list[str]] = {}
    if produce or consume:
        audio = json.loads((FIXTURES / "chrome_produce_audio.json").read_text())

        async def produce_one(tab: Tab) -> None:
            await tab.send("media:produce", {**ids, "kind": "audio", "rtp_parameters": audio}, "p")
            heard: list[str] = []
            produced = False
            while not produced or len(heard) < len(tabs) - 1:
                frame = await asyncio.wait_for(tab.frames.get(), STEP_TIMEOUT)
                if frame["type"] == "media:new_producer":
                    heard.append(frame["data"]["producer_id"])
                elif frame["type"] == "media:produce_result":
                    produced = True
                else:
                    raise RuntimeError(f"{tab.name}: unexpected {frame}")
            announced[tab.name] = heard

        produce_phase = await timed(tabs, produce_one)
    if consume:
        capabilities = json.loads((FIXTURES / "chrome_device_rtp_capabilities.json").read_text())

        async def consume_all(tab: Tab) -> None:
            for producer_id in announced[tab.name]:
                data = {**ids, "producer_id": producer_id, "rtp_capabilities": capabilities}
                await tab.send("media:consume", data, "c")
                await tab.expect("media:consumer_created")

        consume_phase = await timed(tabs, consume_all)

    low, high = server.rtc_ports
    began = time.perf_counter()
    await asyncio.gather(*(tab.ws.close() for tab in tabs))
    deadline = time.monotonic() + STEP_TIMEOUT
    while (left := bound_udp_ports(low, high)) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    leave_ms = (time.perf_counter() - began) * 1000
    for tab in tabs:
        if tab.reader is not None:
            tab.reader.cancel()
    return Result(
        len(tabs), workers, round(cold_start_ms, 1), join_phase, produce_phase, consume_phase,
        round(leave_ms, 1), left, round(web_rss, 1), round(workers_rss, 1),
    )  # fmt: skip


def run(clients: int, workers: int, produce: bool, consume: bool) -> Result:
    with tempfile.TemporaryDirectory(prefix="join-storm-") as tmp:
        directory = Path(tmp)
        database_url = f"sqlite+aiosqlite:///{directory / 'roomler.db'}"
        tenant_id, user_ids = seed(database_url, clients)
        issuer = TokenIssuer(JWT_SECRET, "roomler", 3600, 3600)
        tokens = [issuer.issue(user_id, "access") for user_id in user_ids]
        server = start_server(directory, database_url, workers, clients)
        try:
            return asyncio.run(
                storm(server, tenant_id, tokens, produce=produce, consume=consume, workers=workers)
            )
        finally:
            server.stop()


def summary(result: Result) -> str:
    join = percentiles(list(result.join.per_client_ms.values()))
    lines = [
        f"N={result.clients} workers={result.workers}: cold start {result.cold_start_ms:.0f} ms",
        f"  join     all in {result.join.wall_ms:.0f} ms "
        f"({result.clients / result.join.wall_ms * 1000:.0f} joins/s); per client {join}",
    ]
    for name, phase in (("produce", result.produce), ("consume", result.consume)):
        if phase is not None:
            per = percentiles(list(phase.per_client_ms.values()))
            lines.append(f"  {name:8} all in {phase.wall_ms:.0f} ms; per client {per}")
    lines.append(
        f"  leave    all ports free in {result.leave_ms:.0f} ms (left bound: {result.ports_left})"
    )
    lines.append(
        f"  memory   web {result.web_rss_mb:.0f} MB, workers {result.workers_rss_mb:.0f} MB"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="10,50", help="comma-separated sizes N")
    parser.add_argument("--workers", type=int, default=2, help="SFU worker processes")
    parser.add_argument("--produce", action="store_true", help="every client produces audio")
    parser.add_argument("--consume", action="store_true", help="full mesh of consumers")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    args = parser.parse_args(argv)
    results = []
    for size in (int(n) for n in args.clients.split(",")):
        result = run(size, args.workers, args.produce or args.consume, args.consume)
        print(summary(result), flush=True)
        results.append(asdict(result))
        if result.ports_left:
            print(f"  ERROR: {result.ports_left} UDP ports still bound", file=sys.stderr)
            return 1
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
