"""WebSocket fan-out: Roomler's `/ws` against python-socketio, same machine, same load.

One command (`python benchmarks/ws_fanout.py`) runs, for each size N and each server:

1. the server as a subprocess on 127.0.0.1 (Roomler: `python -m roomler serve` on a seeded
   SQLite database; baseline: a python-socketio ASGI app under the same uvicorn with the
   same WebSocket options, started by this script with `--serve-socketio`);
2. K load-generator processes holding N connections between them, with a lean RFC 6455
   client (an asyncio Protocol: handshake, frame parser, masked sends; no per-frame JSON
   work on the hot path) used for both servers;
3. per event type (`presence:update`, `message:create`, `typing:start`):
   - latency: one sender broadcasts `--latency-count` events, one every
     `--latency-interval` seconds, to a channel of `--group-size` members; every receiver
     stamps each frame on read; delivery k of a sender to a receiver belongs to that
     sender's broadcast k (the server keeps per-connection order), so latency = read
     time - send time on CLOCK_MONOTONIC, which is system-wide on Linux;
   - throughput: every group broadcasts as fast as the server absorbs, closed-loop: at
     most `--window` broadcasts of a group are outstanding (sent, but not yet read by the
     group's "tail" receiver); deliveries read by all receivers in a fixed window / seconds.
4. the server's RSS (/proc/PID/status) before and after connecting: RSS per connection.

Users are seeded straight into the database (one precomputed argon2 hash, membership rows)
and hold access tokens minted with the server's JWT secret: no argon2 per user at run time.
Every loop is bounded in count and time; all traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

from harness import (
    HOST,
    STOP,
    LoadProcesses,
    LoopLag,
    RoomlerServer,
    WsClient,
    fmt,
    free_port,
    machine_busy_secs,
    machine_info,
    package_versions,
    percentile,
    raise_fd_limit,
    ratio,
    run_load_process,
    start_roomler,
    wait_for_quiet_machine,
)

EVENTS = ("presence:update", "message:create", "typing:start")
# The first broadcasts of a kind after start pay one-time costs (SQL compilation, route
# set-up, first SQLite write); they are sent but left out of the latency figures.
LATENCY_WARMUP = 3
OTHER_CPU_WARN_PCT = 15.0
QUIET_CORES = 0.15
PRESENCE_CYCLE = ("online", "idle", "dnd")
JWT_SECRET = "ws-fanout-benchmark-secret-" + "x" * 16  # >= 32 bytes (RFC 7518 section 3.2)

# Bounds that keep every wait finite.
CONNECT_TIMEOUT_SECS = 60.0
ROOMLER_BATCH = b'{"type":"batch"'
QUIET_SECS = 0.3  # a phase has drained when no matching frame came for this long
DRAIN_LIMIT_SECS = 15.0
WORKER_REPLY_SECS = 300.0
CONNECTS_IN_FLIGHT = 64


# --- plan -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    procs: int
    group_size: int
    senders: int
    window: int
    sender_rate: float
    latency_count: int
    latency_interval: float
    throughput_secs: float
    warmup_secs: float
    impls: tuple[str, ...]
    events: tuple[str, ...] = EVENTS
    retries: int = 0
    server_env: tuple[tuple[str, str], ...] = ()


def parse_args(argv: Sequence[str] | None) -> tuple[argparse.Namespace, Plan]:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--sizes", default="1000,5000,10000", help="connection counts (comma list)")
    p.add_argument("--quick", action="store_true", help="smoke run: 1000 connections, short")
    p.add_argument("--procs", type=int, default=2, help="load-generator processes")
    p.add_argument("--group-size", type=int, default=1000, help="members per channel/tenant")
    p.add_argument("--senders", type=int, default=4, help="senders per group (throughput)")
    p.add_argument("--window", type=int, default=4, help="outstanding broadcasts per group")
    p.add_argument("--sender-rate", type=float, default=40.0, help="max events/s per sender")
    p.add_argument("--latency-count", type=int, default=30)
    p.add_argument("--latency-interval", type=float, default=0.1, help="seconds")
    p.add_argument("--throughput-secs", type=float, default=4.0)
    p.add_argument(
        "--impls",
        default="roomler,socketio,floor",
        help="servers: roomler, socketio, floor (uvicorn accepting and holding, no fan-out)",
    )
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--retries",
        type=int,
        default=3,
        help="rerun a phase up to this often while other processes use over 15%% of a core "
        "(not with --quick)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=0.0,
        metavar="SECS",
        help="before each server, wait up to SECS for other processes to go quiet",
    )
    p.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="ROOMLER__KEY=VALUE",
        help="a setting for Roomler's server (repeatable), for A/B runs",
    )
    p.add_argument("--events", default=",".join(EVENTS), help="event types to measure (comma list)")
    p.add_argument("--serve-socketio", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--serve-floor", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    sizes = (1000,) if args.quick else tuple(int(s) for s in args.sizes.split(",") if s)
    plan = Plan(
        sizes=sizes,
        procs=args.procs,
        group_size=args.group_size,
        senders=args.senders,
        window=args.window,
        sender_rate=args.sender_rate,
        latency_count=20 if args.quick else args.latency_count,
        latency_interval=args.latency_interval,
        throughput_secs=2.0 if args.quick else args.throughput_secs,
        warmup_secs=0.3 if args.quick else 0.5,
        impls=tuple(i for i in args.impls.split(",") if i),
        events=tuple(e for e in args.events.split(",") if e),
        retries=0 if args.quick else args.retries,
        server_env=tuple(tuple(kv.split("=", 1)) for kv in args.server_env),  # type: ignore[misc]
    )
    validate_plan(plan)
    return args, plan


def validate_plan(plan: Plan) -> None:
    if not plan.sizes or min(plan.sizes) < plan.senders + 2:
        raise ValueError(f"every size must be at least senders + 2 = {plan.senders + 2}")
    if plan.group_size < plan.senders + 2:
        raise ValueError("group size must leave room for the senders, a tail and a receiver")
    if plan.procs < 1 or plan.window < 1 or plan.sender_rate <= 0:
        raise ValueError("procs, window and sender rate must be positive")
    if not plan.events or set(plan.events) - set(EVENTS):
        raise ValueError(f"events must be some of {', '.join(EVENTS)}")
    unknown = set(plan.impls) - set(DIALECTS)
    if unknown:
        raise ValueError(f"unknown impls: {', '.join(sorted(unknown))}")


# --- who is who -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """One seeded user; connection `index` of a run is user `index`."""

    index: int
    user_id: str
    group: int
    token: str


@dataclass(frozen=True)
class Group:
    group: int
    tenant_id: str
    channel_id: str
    size: int


@dataclass(frozen=True)
class Population:
    members: list[Member]
    groups: list[Group]


def role_of(position: int, senders: int) -> str:
    """Position within a group: the first `senders` send, the next one is the tail."""
    if position < senders:
        return "sender"
    return "tail" if position == senders else "member"


def owner_of(member: Member, plan: Plan) -> int:
    """The worker that holds the connection: a group's senders and tail stay together."""
    position = member.index % plan.group_size
    if position <= plan.senders:
        return member.group % plan.procs
    return member.index % plan.procs


def seed_population(db_path: Path, total: int, plan: Plan) -> Population:
    """Users, one tenant and one channel per group, memberships; tokens for every user."""
    from roomler.auth.tokens import TokenIssuer
    from roomler.db.migrate import upgrade
    from roomler.ids import new_id

    upgrade(f"sqlite+aiosqlite:///{db_path}")
    issuer = TokenIssuer(JWT_SECRET, "roomler", access_ttl=6 * 3600, refresh_ttl=7 * 86400)
    users = [new_id() for _ in range(total)]
    members = [
        Member(i, uid, i // plan.group_size, issuer.issue(uid, "access"))
        for i, uid in enumerate(users)
    ]
    groups = [
        Group(g, new_id(), new_id(), len(users[g * plan.group_size : (g + 1) * plan.group_size]))
        for g in range(math.ceil(total / plan.group_size))
    ]
    insert_rows(db_path, users, groups, plan.group_size)
    return Population(members, groups)


def insert_rows(db_path: Path, users: list[str], groups: list[Group], group_size: int) -> None:
    """One bulk insert per table, with a single precomputed password hash for everyone."""
    from sqlalchemy import create_engine, insert

    from roomler.auth.passwords import hash_password
    from roomler.db import models as m
    from roomler.ids import new_id

    now = m.utcnow()
    password = hash_password("ws-fanout-benchmark")
    # Invisible users announce nothing when they connect: connecting N users costs N
    # handshakes, not N x group presence frames. The benchmark's own presence changes
    # (online, idle, dnd) are what peers then see.
    user_rows = [
        {"id": uid, "email": f"u{i}@bench.test", "username": f"u{i}",
         "display_name": f"User {i}", "password_hash": password, "presence": "invisible",
         "created_at": now, "updated_at": now}
        for i, uid in enumerate(users)
    ]  # fmt: skip
    tenants, channels, tenant_members, channel_members = [], [], [], []
    for group in groups:
        owner = users[group.group * group_size]
        tenants.append(
            {"id": group.tenant_id, "name": f"Bench {group.group}",
             "slug": f"bench-{group.group}", "owner_id": owner, "created_at": now}
        )  # fmt: skip
        channels.append(
            {"id": group.channel_id, "tenant_id": group.tenant_id, "name": "general",
             "path": "general", "channel_type": "text", "is_private": False,
             "member_count": group.size, "created_by": owner, "created_at": now,
             "updated_at": now}
        )  # fmt: skip
        for uid in users[group.group * group_size : group.group * group_size + group.size]:
            tenant_members.append(
                {"id": new_id(), "tenant_id": group.tenant_id, "user_id": uid,
                 "role": "owner" if uid == owner else "member", "joined_at": now}
            )  # fmt: skip
            channel_members.append(
                {"id": new_id(), "tenant_id": group.tenant_id, "channel_id": group.channel_id,
                 "user_id": uid, "joined_at": now}
            )  # fmt: skip
    engine = create_engine(f"sqlite:///{db_path}")
    with engine.begin() as conn:
        conn.execute(insert(m.User), user_rows)
        conn.execute(insert(m.Tenant), tenants)
        conn.execute(insert(m.TenantMember), tenant_members)
        conn.execute(insert(m.Channel), channels)
        conn.execute(insert(m.ChannelMember), channel_members)
    engine.dispose()


def reset_database(db_path: Path) -> None:
    """Undo what a run changed: stored presence and posted messages."""
    with contextlib.closing(sqlite3.connect(db_path)) as db:
        db.execute("UPDATE users SET presence = 'invisible'")
        db.execute("DELETE FROM messages")
        db.commit()


# --- a lean RFC 6455 client -------------------------------------------------------------------


# --- the two servers' wire dialects -----------------------------------------------------------


class Dialect:
    """How a client of one server connects, frames events and reads broadcasts."""

    name = ""

    def target(self, member: Member) -> str:
        raise NotImplementedError

    def setup(self, peer: Peer, payload: bytes) -> None:
        """Handle a frame that arrives before the connection is ready."""
        raise NotImplementedError

    def event(self, event: str, data: dict[str, Any]) -> bytes:
        raise NotImplementedError

    def prefix(self, event: str) -> bytes:
        """The bytes every broadcast frame of `event` starts with."""
        raise NotImplementedError

    def data(self, payload: bytes) -> dict[str, Any]:
        raise NotImplementedError

    def control(self, peer: Peer, payload: bytes) -> bool:
        """Answer a protocol frame above WebSocket; True when `payload` was one."""
        return False

    def unbatch(self, payload: bytes) -> list[bytes]:
        """The events of a frame that carries several (only Roomler sends such frames)."""
        return []

    def post_message(self, peer: Peer, content: str) -> tuple[str, dict[str, str], Any]:
        raise NotImplementedError


class RoomlerDialect(Dialect):
    name = "roomler"

    def target(self, member: Member) -> str:
        return f"/ws?token={member.token}"

    def setup(self, peer: Peer, payload: bytes) -> None:
        if payload.startswith(b'{"type":"connected"'):
            peer.ready()
        else:
            peer.refused(payload[:200].decode("utf-8", "replace"))

    def event(self, event: str, data: dict[str, Any]) -> bytes:
        return json.dumps({"type": event, "data": data}, separators=(",", ":")).encode()

    def prefix(self, event: str) -> bytes:
        return b'{"type":"' + event.encode() + b'"'

    def data(self, payload: bytes) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(payload)["data"]
        return frame

    def unbatch(self, payload: bytes) -> list[bytes]:
        """The events of a `batch` frame (docs/protocol.md, Batches), each as its own frame:
        each is one delivery, as if it had come alone."""
        events = json.loads(payload)["data"]["events"]
        return [json.dumps(event, separators=(",", ":")).encode() for event in events]

    def post_message(self, peer: Peer, content: str) -> tuple[str, dict[str, str], Any]:
        g = peer.group
        url = f"/api/tenant/{g.tenant_id}/channel/{g.channel_id}/message"
        return url, {"authorization": f"Bearer {peer.member.token}"}, {"content": content}


class SocketIODialect(Dialect):
    """Engine.IO 4 over a raw WebSocket (no polling): `0` open, `40` connect, `42` event."""

    name = "socketio"

    def target(self, member: Member) -> str:
        return "/socket.io/?EIO=4&transport=websocket"

    def setup(self, peer: Peer, payload: bytes) -> None:
        if payload.startswith(b"0{"):  # Engine.IO open: join namespace "/" with our auth
            auth = {"user_id": peer.member.user_id, "group": peer.member.group}
            peer.client.send_text(b"40" + json.dumps(auth).encode())
        elif payload.startswith(b"40"):
            peer.ready()
        elif not self.control(peer, payload):
            peer.refused(payload[:200].decode("utf-8", "replace"))

    def event(self, event: str, data: dict[str, Any]) -> bytes:
        return b"42" + json.dumps([event, data], separators=(",", ":")).encode()

    def prefix(self, event: str) -> bytes:
        return b'42["' + event.encode() + b'"'

    def data(self, payload: bytes) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(payload[2:])[1]
        return frame

    def control(self, peer: Peer, payload: bytes) -> bool:
        if payload == b"2":  # Engine.IO ping; the client answers with pong
            peer.client.send_text(b"3")
            return True
        return False

    def post_message(self, peer: Peer, content: str) -> tuple[str, dict[str, str], Any]:
        return "/bench/message", {}, {"user_id": peer.member.user_id, "content": content}


class FloorDialect(RoomlerDialect):
    """uvicorn with an app that accepts and holds: the stack's own cost per connection."""

    name = "floor"

    def target(self, member: Member) -> str:
        return "/ws"


DIALECTS: dict[str, type[Dialect]] = {
    "roomler": RoomlerDialect,
    "socketio": SocketIODialect,
    "floor": FloorDialect,
}


# --- load-generator process -------------------------------------------------------------------


class Peer:
    """One held connection of a worker."""

    def __init__(self, worker: Worker, member: Member, group: Group, role: str) -> None:
        self.worker = worker
        self.member = member
        self.group = group
        self.role = role
        self.self_tag = f'"user_id":"{member.user_id}"'.encode()
        self.presence_step = 0
        self.is_ready = False
        self.ready_future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.tail_of: GroupDriver | None = None
        self.client = WsClient(worker.dialect.target(member), worker.port, self.on_text)

    def ready(self) -> None:
        self.is_ready = True
        if not self.ready_future.done():
            self.ready_future.set_result(None)

    def refused(self, reason: str) -> None:
        if not self.ready_future.done():
            self.ready_future.set_exception(ConnectionError(reason))
        self.client.close()

    def on_text(self, payload: bytes, now: int) -> None:
        if self.is_ready:
            self.worker.on_frame(self, payload, now)
        else:
            self.worker.dialect.setup(self, payload)

    def next_presence(self) -> str:
        value = PRESENCE_CYCLE[self.presence_step % len(PRESENCE_CYCLE)]
        self.presence_step += 1
        return value


class GroupDriver:
    """Closed-loop throughput for one group: at most `window` broadcasts outstanding."""

    def __init__(self, senders: list[Peer], tail: Peer, window: int, rate: float) -> None:
        self.senders = senders
        self.window = window
        self.gap_ns = int(1e9 / rate)
        self.sent = 0
        self.received = 0
        self._progress: asyncio.Future[None] | None = None
        tail.tail_of = self

    def progress(self) -> None:
        self.received += 1
        if self._progress is not None and not self._progress.done():
            self._progress.set_result(None)

    async def run(self, worker: Worker, event: str, t_start: int, t_end: int) -> None:
        await sleep_until(t_start)
        self.sent = self.received = 0
        next_ok = [t_start] * len(self.senders)
        turn = 0
        loop = asyncio.get_running_loop()
        while (now := time.monotonic_ns()) < t_end:
            if self.sent - self.received >= self.window:
                self._progress = loop.create_future()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._progress, (t_end - now) / 1e9)
                continue
            i = turn % len(self.senders)
            turn += 1
            if next_ok[i] > now:  # per-sender pacing keeps Roomler's rate limit out of it
                await asyncio.sleep((next_ok[i] - now) / 1e9)
            next_ok[i] = max(next_ok[i], now) + self.gap_ns
            self.sent += 1
            worker.send_event(self.senders[i], event, f"bench {self.sent}")


async def sleep_until(t_ns: int) -> None:
    delay = (t_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        await asyncio.sleep(delay)


class Worker:
    """Holds its share of the connections and obeys the coordinator's commands."""

    def __init__(
        self, dialect: Dialect, port: int, members: list[Member], groups: list[Group], plan: Plan
    ) -> None:
        self.dialect = dialect
        self.port = port
        self.members = members
        self.groups = groups
        self.plan = plan
        self.peers: list[Peer] = []
        self.drivers: list[GroupDriver] = []
        self.http: Any = None
        self.prefix: bytes | None = None
        self.recording = False
        self.records: list[tuple[Peer, bytes, int]] = []
        self.count = 0
        self.t_count = self.t_end = 0
        self.last_match = 0
        self.errors: list[str] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.phase_cpu = 0.0

    # The hot path: one call per received broadcast frame.
    def on_frame(self, peer: Peer, payload: bytes, now: int) -> None:
        prefix = self.prefix
        if prefix is None or not payload.startswith(prefix):
            if prefix is not None and payload.startswith(ROOMLER_BATCH):
                for event in self.dialect.unbatch(payload):
                    self.on_frame(peer, event, now)
            elif not self.dialect.control(peer, payload) and payload.startswith(b'{"type":"error"'):
                self.note_error(payload.decode("utf-8", "replace"))
            return
        if peer.role == "sender" and peer.self_tag in payload:
            return  # Roomler tells the user's own tabs of their presence change; not fan-out
        self.last_match = now
        if self.recording:
            self.records.append((peer, payload, now))
            return
        if self.t_count <= now < self.t_end:
            self.count += 1
        if peer.tail_of is not None:
            peer.tail_of.progress()

    def note_error(self, text: str) -> None:
        if len(self.errors) < 5:
            self.errors.append(text[:300])

    # --- commands ----------------------------------------------------------------------------

    async def connect(self) -> dict[str, Any]:
        started = time.monotonic()
        gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)
        by_group = {g.group: g for g in self.groups}
        plan = self.plan
        for member in self.members:
            role = role_of(member.index % plan.group_size, plan.senders)
            self.peers.append(Peer(self, member, by_group[member.group], role))
        results = await asyncio.gather(*(self._open(p, gate) for p in self.peers))
        self._make_drivers()
        failures = [r for r in results if r is not None]
        return {
            "ok": len(results) - len(failures),
            "failed": len(failures),
            "first_error": failures[0] if failures else None,
            "secs": time.monotonic() - started,
        }

    async def _open(self, peer: Peer, gate: asyncio.Semaphore) -> str | None:
        loop = asyncio.get_running_loop()
        async with gate:
            try:
                await asyncio.wait_for(
                    loop.create_connection(lambda: peer.client, HOST, self.port),
                    CONNECT_TIMEOUT_SECS,
                )
                await asyncio.wait_for(peer.ready_future, CONNECT_TIMEOUT_SECS)
            except (OSError, ConnectionError, TimeoutError) as exc:
                peer.client.close()
                return peer.client.failure or f"{type(exc).__name__}: {exc}"
        return None

    def _make_drivers(self) -> None:
        by_group: dict[int, list[Peer]] = {}
        for peer in self.peers:
            if peer.role != "member" and peer.is_ready:
                by_group.setdefault(peer.group.group, []).append(peer)
        for peers in by_group.values():
            senders = [p for p in peers if p.role == "sender"]
            tails = [p for p in peers if p.role == "tail"]
            if senders and tails:
                driver = GroupDriver(senders, tails[0], self.plan.window, self.plan.sender_rate)
                self.drivers.append(driver)

    def send_event(self, peer: Peer, event: str, content: str) -> int:
        """Send one event from `peer`; returns the send time (monotonic ns)."""
        if event == "message:create":
            return self._post_soon(peer, content)
        data = (
            {"presence": peer.next_presence()}
            if event == "presence:update"
            else {"channel_id": peer.group.channel_id}
        )
        frame = self.dialect.event(event, data)
        sent = time.monotonic_ns()
        peer.client.send_text(frame)
        return sent

    def _post_soon(self, peer: Peer, content: str) -> int:
        sent = time.monotonic_ns()
        task = asyncio.get_running_loop().create_task(self.post(peer, content))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return sent

    async def http_client(self) -> Any:
        """The worker's HTTP client, with one connection opened before anything is timed."""
        if self.http is None:
            import httpx

            self.http = httpx.AsyncClient(
                base_url=f"http://{HOST}:{self.port}",
                timeout=30.0,
                limits=httpx.Limits(max_connections=256, max_keepalive_connections=256),
            )
            await self.http.get("/health")  # any answer will do, even 404
        return self.http

    async def post(self, peer: Peer, content: str) -> None:
        http = await self.http_client()
        url, headers, body = self.dialect.post_message(peer, content)
        try:
            response = await http.post(url, headers=headers, json=body)
            if response.status_code >= 300:
                self.note_error(f"POST {response.status_code}: {response.text}")
        except Exception as exc:  # counted, the run carries on
            self.note_error(f"POST failed: {type(exc).__name__}: {exc}")

    def start_recording(self, event: str) -> str:
        self.phase_cpu = time.process_time()
        self.prefix = self.dialect.prefix(event)
        self.records.clear()
        self.recording = True
        return "ok"

    async def send_series(self, event: str, count: int, interval: float) -> dict[str, list[int]]:
        """Send `count` events from group 0's first sender, if this worker holds it."""
        sender = next(
            (p for p in self.peers if p.member.index == 0 and p.is_ready and p.role == "sender"),
            None,
        )
        if sender is None:
            return {}
        if event == "message:create":
            await self.http_client()
        times: list[int] = []
        start = time.monotonic_ns()
        for k in range(count):
            await sleep_until(start + int(k * interval * 1e9))
            if event == "message:create":
                times.append(time.monotonic_ns())
                await self.post(sender, f"bench latency {k}")
            else:
                times.append(self.send_event(sender, event, ""))
        return {sender.member.user_id: times}

    async def collect(self, send_times: dict[str, list[int]]) -> dict[str, Any]:
        """Latencies of this worker's receivers, once all broadcasts have come (or timed out)."""
        sent = sum(len(times) for times in send_times.values())
        receivers = sum(
            1 for p in self.peers if p.group.group == 0 and p.member.index != 0 and p.is_ready
        )
        deadline = time.monotonic() + DRAIN_LIMIT_SECS
        while len(self.records) < sent * receivers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await self.wait_quiet()
        self.recording = False
        self.prefix = None
        seen: dict[tuple[int, str], int] = {}
        latencies: list[int] = []
        unmatched = 0
        for peer, payload, now in self.records:
            data = self.dialect.data(payload)
            sender = data.get("author_id") or data.get("user_id")
            k = seen.get((peer.member.index, sender), 0)
            seen[(peer.member.index, sender)] = k + 1
            times = send_times.get(sender, [])
            if k >= len(times):
                unmatched += 1
            elif k >= LATENCY_WARMUP:
                latencies.append(now - times[k])
        self.records.clear()
        cpu = time.process_time() - self.phase_cpu
        return {"latencies": latencies, "unmatched": unmatched, "cpu_secs": cpu}

    async def wait_quiet(self) -> None:
        deadline = time.monotonic() + DRAIN_LIMIT_SECS
        while time.monotonic() < deadline:
            await asyncio.sleep(QUIET_SECS / 3)
            if time.monotonic_ns() - self.last_match > QUIET_SECS * 1e9 and not self.tasks:
                return

    async def throughput(self, event: str, t_start: int, t_count: int, t_end: int) -> Any:
        self.prefix = self.dialect.prefix(event)
        self.count = 0
        self.t_count, self.t_end = t_count, t_end
        cpu = time.process_time()
        window = asyncio.get_running_loop().create_task(self.window_cpu(t_count, t_end))
        await asyncio.gather(*(d.run(self, event, t_start, t_end) for d in self.drivers))
        await sleep_until(t_end)
        await self.wait_quiet()
        self.prefix = None
        return {
            "count": self.count,
            "sent": sum(d.sent for d in self.drivers),
            "cpu_secs": time.process_time() - cpu,
            "window_cpu_secs": await window,
        }

    async def window_cpu(self, t_count: int, t_end: int) -> float:
        """CPU seconds this process used between the two instants (all its threads)."""
        await sleep_until(t_count)
        start = time.process_time()
        await sleep_until(t_end)
        return time.process_time() - start

    def status(self) -> dict[str, Any]:
        codes: dict[str, int] = {}
        for peer in self.peers:
            if peer.client.close_code is not None:
                codes[str(peer.client.close_code)] = codes.get(str(peer.client.close_code), 0) + 1
        held = sum(1 for p in self.peers if p.is_ready and p.client.open)
        return {"held": held, "close_codes": codes, "errors": self.errors}

    async def stop(self) -> str:
        for peer in self.peers:
            peer.client.close()
        if self.http is not None:
            await self.http.aclose()
        return "bye"

    async def dispatch(self, command: str, args: Any) -> Any:
        if command == STOP:
            return await self.stop()
        if command == "connect":
            return await self.connect()
        if command == "record":
            return self.start_recording(args)
        if command == "series":
            return await self.send_series(*args)
        if command == "collect":
            return await self.collect(args)
        if command == "throughput":
            return await self.throughput(*args)
        if command == "status":
            return self.status()
        raise ValueError(f"unknown worker command {command!r}")


def worker_main(
    pipe: Pipe, impl: str, port: int, members: list[Member], groups: list[Group], plan: Plan
) -> None:
    async def worker() -> Callable[[str, Any], Awaitable[Any]]:
        return Worker(DIALECTS[impl](), port, members, groups, plan).dispatch

    run_load_process(pipe, worker)


# --- the servers ------------------------------------------------------------------------------


def serve_socketio(port: int) -> None:
    """The baseline: python-socketio's ASGI server doing the same three broadcasts."""
    import logging
    from datetime import UTC, datetime

    import socketio  # type: ignore[import-untyped]
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from roomler.config import WsSettings
    from roomler.ids import new_id
    from roomler.realtime.keepalive import uvicorn_websocket_options

    ws = WsSettings()
    sio = socketio.AsyncServer(
        async_mode="asgi", ping_interval=ws.ping_interval_secs, ping_timeout=ws.ping_timeout_secs
    )
    rooms: dict[str, tuple[str, str]] = {}  # sid -> (user id, room)
    sid_of: dict[str, str] = {}

    @sio.event
    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any]) -> None:
        user, room = str(auth["user_id"]), f"group-{int(auth['group'])}"
        rooms[sid], sid_of[user] = (user, room), sid
        await sio.enter_room(sid, room)

    @sio.event
    async def disconnect(sid: str, *_reason: Any) -> None:
        user, _room = rooms.pop(sid, ("", ""))
        sid_of.pop(user, None)

    @sio.on("typing:start")
    async def typing_start(sid: str, data: dict[str, Any]) -> None:
        user, room = rooms[sid]
        payload = {"channel_id": data["channel_id"], "user_id": user}
        await sio.emit("typing:start", payload, room=room, skip_sid=sid)

    @sio.on("presence:update")
    async def presence_update(sid: str, data: dict[str, Any]) -> None:
        user, room = rooms[sid]
        payload = {"user_id": user, "presence": data["presence"]}
        await sio.emit("presence:update", payload, room=room, skip_sid=sid)

    async def post_message(request: Request) -> JSONResponse:
        body = await request.json()
        sid = sid_of[body["user_id"]]
        now = datetime.now(UTC).isoformat()
        message = {  # the same fields as Roomler's message:create, so frames are alike in size
            "id": new_id(),
            "channel_id": new_id(),
            "author_id": body["user_id"],
            "content": body["content"],
            "message_type": "default",
            "thread_id": None,
            "referenced_message_id": None,
            "is_edited": False,
            "is_pinned": False,
            "nonce": None,
            "created_at": now,
            "updated_at": now,
        }
        await sio.emit("message:create", message, room=rooms[sid][1], skip_sid=sid)
        return JSONResponse(message, status_code=201)

    http = Starlette(routes=[Route("/bench/message", post_message, methods=["POST"])])
    app = socketio.ASGIApp(sio, other_asgi_app=http)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(app, host=HOST, port=port, log_config=None, **uvicorn_websocket_options(ws))


def serve_floor(port: int) -> None:
    """An ASGI app that accepts a WebSocket, says `connected` and reads until it closes."""
    import logging

    import uvicorn

    from roomler.config import WsSettings
    from roomler.realtime.keepalive import uvicorn_websocket_options

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": '{"type":"connected"}'})
            while (await receive())["type"] != "websocket.disconnect":
                pass
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        app,
        host=HOST,
        port=port,
        log_config=None,
        lifespan="off",
        **uvicorn_websocket_options(WsSettings()),
    )


def start_server(impl: str, workdir: Path, db_path: Path, plan: Plan) -> RoomlerServer:
    """One server under test, its garbage collections timed (harness.run_with_gc_log)."""
    gc_log = workdir / f"{impl}-{time.monotonic_ns()}.gc.json"
    if impl == "roomler":
        settings = {
            "ROOMLER__APP__DATA_DIR": str(workdir),
            "ROOMLER__DATABASE__URL": f"sqlite+aiosqlite:///{db_path}",
            "ROOMLER__JWT__SECRET": JWT_SECRET,
            "ROOMLER__JWT__ACCESS_TOKEN_TTL_SECS": str(6 * 3600),
            # For its event-loop lag probe (roomler_event_loop_lag_*).
            "ROOMLER__METRICS__ENABLED": "true",
            **dict(plan.server_env),
        }
        return start_roomler(workdir, settings, log_name=f"{impl}.log", gc_log=gc_log)
    port = free_port(HOST)
    return start_roomler(
        workdir,
        {},
        port=port,
        command=[str(Path(__file__).resolve()), f"--serve-{impl}", str(port)],
        log_name=f"{impl}.log",
        gc_log=gc_log,
        ready_path="/socket.io/?EIO=4&transport=polling" if impl == "socketio" else "/health",
    )


async def one_connection(impl: str, port: int, member: Member) -> None:
    """Open and close one connection: lazy imports and first-use caches load before RSS."""

    class Once:
        def __init__(self) -> None:
            self.done = asyncio.get_running_loop().create_future()

    once = Once()

    def on_text(payload: bytes, _now: int) -> None:
        if payload.startswith(b"0{"):
            client.send_text(b"40" + json.dumps({"user_id": member.user_id, "group": 0}).encode())
        elif not once.done.done():
            once.done.set_result(None)

    client = WsClient(DIALECTS[impl]().target(member), port, on_text)
    loop = asyncio.get_running_loop()
    await loop.create_connection(lambda: client, HOST, port)
    await asyncio.wait_for(once.done, 10)
    client.close()
    await asyncio.wait_for(client.lost, 10)
    await asyncio.sleep(0.3)


# --- coordinator ------------------------------------------------------------------------------


@dataclass
class Latency:
    p50_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    samples: int = 0
    expected: int = 0
    other_cpu_pct: float = 0.0  # busy CPU on the machine that was neither server nor clients


@dataclass
class Throughput:
    deliveries_per_sec: float = 0.0
    broadcasts_per_sec: float = 0.0
    server_cpu_pct: float = 0.0
    client_cpu_pct: float = 0.0
    other_cpu_pct: float = 0.0


@dataclass
class Stalls:
    """The server standing still during one phase: full collections, event-loop lag."""

    gc_full_count: int = 0
    gc_full_max_ms: float = 0.0
    loop_lag: LoopLag = field(default_factory=LoopLag)


class StallWatch:
    """Full collections (GC log) and the lag probe (/metrics, Roomler only) over a phase."""

    def __init__(self, server: RoomlerServer) -> None:
        self.server = server
        self.collections = len(server.full_collections())
        self.metrics = server.metrics()

    def stop(self) -> Stalls:
        time.sleep(0.6)  # the GC log is written twice a second
        during = self.server.full_collections()[self.collections :]
        return Stalls(
            len(during),
            1000 * max(during, default=0.0),
            LoopLag.between(self.metrics, self.server.metrics()),
        )


@dataclass
class EventResult:
    event: str
    latency: Latency
    throughput: Throughput
    reruns: int = 0  # phases measured again because other processes were busy
    stalls: Stalls = field(default_factory=Stalls)  # over its latency and throughput phases


@dataclass
class CaseResult:
    impl: str
    size: int
    held: int = 0
    connect_secs: float = 0.0
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    rss_end_kb: int = 0
    gc_full_count: int = 0  # generation-2 collections from the first connection to the end
    gc_full_secs: float = 0.0
    gc_full_max_ms: float = 0.0
    # The server's event-loop lag probe from the first connection to the end (Roomler only).
    loop_lag: LoopLag = field(default_factory=LoopLag)
    connect_stalls: Stalls = field(default_factory=Stalls)  # while the N connections opened
    events: list[EventResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def kb_per_connection(self) -> float:
        return (self.rss_after_kb - self.rss_before_kb) / self.size


class Workers:
    """The load-generator processes of one case, holding its `size` connections."""

    def __init__(self, impl: str, port: int, population: Population, size: int, plan: Plan):
        members = population.members[:size]
        groups = population.groups[: math.ceil(size / plan.group_size)]
        groups = [
            Group(g.group, g.tenant_id, g.channel_id, min(g.size, size - g.group * plan.group_size))
            for g in groups
        ]
        self.groups = groups
        shares = [[m for m in members if owner_of(m, plan) == w] for w in range(plan.procs)]
        self.load = LoadProcesses(
            worker_main, [(impl, port, mine, groups, plan) for mine in shares]
        )
        self.count = plan.procs

    def send(self, command: str, args: Any = None) -> None:
        self.load.send(command, [args] * self.count)

    def replies(self) -> list[Any]:
        return [self.load.reply(k, WORKER_REPLY_SECS) for k in range(self.count)]

    def ask(self, command: str, args: Any = None) -> list[Any]:
        self.send(command, args)
        return self.replies()

    def close(self) -> None:
        self.load.close(20)


def run_case(
    impl: str, size: int, population: Population, plan: Plan, workdir: Path, db_path: Path
) -> CaseResult:
    result = CaseResult(impl, size)
    if impl == "roomler":
        reset_database(db_path)
    server = start_server(impl, workdir, db_path, plan)
    workers: Workers | None = None
    try:
        asyncio.run(one_connection(impl, server.port, population.members[0]))
        result.rss_before_kb = server.rss_kb()
        gc_before = server.full_collections()
        metrics_before = server.metrics()
        workers = Workers(impl, server.port, population, size, plan)
        watch = StallWatch(server)
        connected = workers.ask("connect")
        result.connect_stalls = watch.stop()
        result.connect_secs = max(r["secs"] for r in connected)
        failures = [r["first_error"] for r in connected if r["failed"]]
        if failures:
            result.errors.append(
                f"{sum(r['failed'] for r in connected)} connects failed: {failures[0]}"
            )
        if sum(r["ok"] for r in connected) < size:
            print(
                f"  {impl}: only {sum(r['ok'] for r in connected)} of {size} connected; "
                f"skipping its phases ({failures[0] if failures else ''})",
                flush=True,
            )
            return result
        time.sleep(1.0)
        result.rss_after_kb = server.rss_kb()
        for event in plan.events if impl != "floor" else ():
            watch = StallWatch(server)
            outcome = measure_event(workers, server, event, plan)
            outcome.stalls = watch.stop()
            result.events.append(outcome)
            print(
                f"  {impl:8} N={size:<6} {event:16} "
                f"{outcome.throughput.deliveries_per_sec:>9,.0f} del/s  "
                f"p50 {outcome.latency.p50_ms:7.1f} ms  p99 {outcome.latency.p99_ms:7.1f} ms"
                f"  (reruns {outcome.reruns})",
                flush=True,
            )
        status = workers.ask("status")
        result.held = sum(s["held"] for s in status)
        result.rss_end_kb = server.rss_kb()
        time.sleep(0.6)  # one more GC dump
        gc_after = server.full_collections()
        result.loop_lag = LoopLag.between(metrics_before, server.metrics())
        during = gc_after[len(gc_before) :]
        result.gc_full_count = len(during)
        result.gc_full_secs = sum(during)
        result.gc_full_max_ms = 1000 * max(during, default=0.0)
        for s in status:
            result.errors.extend(s["errors"])
            if s["close_codes"]:
                result.errors.append(f"closed by the server: {s['close_codes']}")
    finally:
        if workers is not None:
            workers.close()
        server.stop()
    return result


def measure_event(workers: Workers, server: RoomlerServer, event: str, plan: Plan) -> EventResult:
    """Latency, then throughput; a phase that other processes disturbed is run again."""
    latencies = [measure_latency(workers, server, event, plan)]
    while latencies[-1].other_cpu_pct > OTHER_CPU_WARN_PCT and len(latencies) <= plan.retries:
        latencies.append(measure_latency(workers, server, event, plan))
    throughputs = [measure_throughput(workers, server, event, plan)]
    while throughputs[-1].other_cpu_pct > OTHER_CPU_WARN_PCT and len(throughputs) <= plan.retries:
        throughputs.append(measure_throughput(workers, server, event, plan))
    return EventResult(
        event,
        min(latencies, key=lambda r: r.other_cpu_pct),
        min(throughputs, key=lambda r: r.other_cpu_pct),
        reruns=len(latencies) + len(throughputs) - 2,
    )


class CpuWatch:
    """Busy CPU of the whole machine and of the server between two instants."""

    def __init__(self, server: RoomlerServer) -> None:
        self.server = server
        self.start()

    def start(self) -> None:
        self.wall = time.monotonic()
        self.busy = machine_busy_secs()
        self.server_secs = self.server.cpu_secs()

    def stop(self) -> tuple[float, float, float]:
        """(wall seconds, machine busy seconds, server seconds) since `start`."""
        return (
            time.monotonic() - self.wall,
            machine_busy_secs() - self.busy,
            self.server.cpu_secs() - self.server_secs,
        )


def measure_latency(workers: Workers, server: RoomlerServer, event: str, plan: Plan) -> Latency:
    watch = CpuWatch(server)
    workers.ask("record", event)
    total = LATENCY_WARMUP + plan.latency_count
    series = workers.ask("series", (event, total, plan.latency_interval))
    send_times = {k: v for s in series for k, v in s.items()}
    collected = workers.ask("collect", send_times)
    wall, busy, server_secs = watch.stop()
    clients = sum(c["cpu_secs"] for c in collected)
    latencies = sorted(ns for c in collected for ns in c["latencies"])
    out = Latency(
        samples=len(latencies),
        expected=plan.latency_count * (workers.groups[0].size - 1),
        other_cpu_pct=max(0.0, 100 * (busy - server_secs - clients) / wall),
    )
    if latencies:
        out.p50_ms = percentile(latencies, 0.50) / 1e6
        out.p99_ms = percentile(latencies, 0.99) / 1e6
        out.max_ms = latencies[-1] / 1e6
    return out


def measure_throughput(
    workers: Workers, server: RoomlerServer, event: str, plan: Plan
) -> Throughput:
    t_start = time.monotonic_ns() + int(0.3e9)
    t_count = t_start + int(plan.warmup_secs * 1e9)
    t_end = t_count + int(plan.throughput_secs * 1e9)
    workers.send("throughput", (event, t_start, t_count, t_end))
    wait_until_ns(t_count)
    watch = CpuWatch(server)
    wait_until_ns(t_end)
    wall, busy, server_secs = watch.stop()
    results = workers.replies()
    clients = sum(r["window_cpu_secs"] for r in results)
    return Throughput(
        deliveries_per_sec=sum(r["count"] for r in results) / plan.throughput_secs,
        broadcasts_per_sec=sum(r["sent"] for r in results)
        / (plan.throughput_secs + plan.warmup_secs),
        server_cpu_pct=100 * server_secs / wall,
        client_cpu_pct=100 * clients / wall,
        other_cpu_pct=max(0.0, 100 * (busy - server_secs - clients) / wall),
    )


def wait_until_ns(t_ns: int) -> None:
    delay = (t_ns - time.monotonic_ns()) / 1e9
    if delay > 0:
        time.sleep(delay)


# --- report -----------------------------------------------------------------------------------


def report(results: list[CaseResult], plan: Plan, info: dict[str, str]) -> str:
    lines = [
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram']} RAM, "
        f"Python {info['python']}, Linux {info['kernel']}",
        f"Packages: {info['versions']}",
        f"Load: {plan.procs} load-generator processes; channels of {plan.group_size} members; "
        f"latency: {plan.latency_count} broadcasts {plan.latency_interval * 1000:.0f} ms apart; "
        f"throughput: {plan.senders} senders x window {plan.window} per channel, "
        f"{plan.throughput_secs:g} s",
        "",
        "| server | N | held | connect s | RSS before MB | RSS after MB | KB/conn | "
        "full GCs | in full GC s | longest GC ms | loop lag max ms | lag > 100 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.impl} | {r.size:,} | {r.held:,} | {r.connect_secs:.1f} | "
            f"{r.rss_before_kb / 1024:.0f} | {r.rss_after_kb / 1024:.0f} | "
            f"{r.kb_per_connection:.1f} | {r.gc_full_count} | {r.gc_full_secs:.1f} | "
            f"{r.gc_full_max_ms:.0f} | {r.loop_lag.describe()} | "
            f"{r.loop_lag.over_100ms if r.loop_lag.samples else '—'} |"
        )
    lines += [
        "",
        "| server | N | event | deliveries/s | broadcasts/s | p50 ms | p99 ms | max ms | "
        "server CPU | clients CPU | other CPU (tput / lat) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for e in r.events:
            lat, tp = e.latency, e.throughput
            lines.append(
                f"| {r.impl} | {r.size:,} | {e.event} | {tp.deliveries_per_sec:,.0f} | "
                f"{tp.broadcasts_per_sec:.1f} | {fmt(lat.p50_ms, '.1f')} | "
                f"{fmt(lat.p99_ms, '.1f')} | {fmt(lat.max_ms, '.1f')} | "
                f"{tp.server_cpu_pct:.0f}% | {tp.client_cpu_pct:.0f}% | "
                f"{tp.other_cpu_pct:.0f}% / {lat.other_cpu_pct:.0f}% |"
            )
    lines += stall_table(results)
    lines += ratio_table(results)
    lines.append("")
    lines.append(
        "full GCs: the server's generation-2 collections from the first connection to the end "
        "of its phases, the seconds spent in them and the longest one (the event loop stands "
        "still meanwhile). Loop lag: the server's probe (a 25 ms sleep, 40 a second; "
        "roomler_event_loop_lag_*) over the same span: the latest wake-up, and how many "
        "wake-ups were over 100 ms late."
    )
    lines.append(
        "CPU columns: % of one core during the throughput window (this machine has "
        f"{info['cores']}); other = busy CPU of processes outside this benchmark during the "
        "throughput / latency phase kept (the least disturbed of its tries)."
    )
    busiest = max(
        (
            max(e.latency.other_cpu_pct, e.throughput.other_cpu_pct)
            for r in results
            for e in r.events
        ),
        default=0.0,
    )
    if busiest > OTHER_CPU_WARN_PCT:
        lines.append(
            f"WARNING: other processes used up to {busiest:.0f}% of a core during the "
            "run; figures are lower and noisier than on a quiet machine."
        )
    for r in results:
        for e in r.events:
            if e.latency.samples != e.latency.expected:
                lines.append(
                    f"note: {r.impl} N={r.size} {e.event}: {e.latency.samples} of "
                    f"{e.latency.expected} latency deliveries read"
                )
        for err in r.errors[:5]:
            lines.append(f"note: {r.impl} N={r.size}: {err}")
    return "\n".join(lines)


def stall_table(results: list[CaseResult]) -> list[str]:
    lines = [
        "",
        "Stalls per phase (connect: while the N connections opened; an event: its latency "
        "and throughput phases)",
        "",
        "| server | N | phase | full GCs | longest GC ms | loop lag max ms | lag > 100 ms |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in results:
        phases = [("connect", r.connect_stalls)] + [(e.event, e.stalls) for e in r.events]
        for name, st in phases:
            lag = st.loop_lag
            lines.append(
                f"| {r.impl} | {r.size:,} | {name} | {st.gc_full_count} | "
                f"{st.gc_full_max_ms:,.0f} | {lag.describe()} | "
                f"{lag.over_100ms if lag.samples else '—'} |"
            )
    return lines


def ratio_table(results: list[CaseResult]) -> list[str]:
    by = {(r.impl, r.size): r for r in results}
    sizes = sorted({r.size for r in results})
    if not any(("roomler", n) in by and ("socketio", n) in by for n in sizes):
        return []
    lines = [
        "",
        "Roomler / python-socketio (deliveries: higher is better; latency, KB: lower is better)",
        "",
        "| N | KB/conn | event | deliveries/s | p50 | p99 |",
        "|---:|---:|---|---:|---:|---:|",
    ]
    for n in sizes:
        ours, theirs = by.get(("roomler", n)), by.get(("socketio", n))
        if ours is None or theirs is None:
            continue
        kb = ratio(ours.kb_per_connection, theirs.kb_per_connection)
        for a, b in zip(ours.events, theirs.events, strict=True):
            deliveries = ratio(a.throughput.deliveries_per_sec, b.throughput.deliveries_per_sec)
            lines.append(
                f"| {n:,} | {kb} | {a.event} | {deliveries} | "
                f"{ratio(a.latency.p50_ms, b.latency.p50_ms)} | "
                f"{ratio(a.latency.p99_ms, b.latency.p99_ms)} |"
            )
    return lines


# --- main -------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, plan = parse_args(argv)
    if args.serve_socketio:
        serve_socketio(args.serve_socketio)
        return 0
    if args.serve_floor:
        serve_floor(args.serve_floor)
        return 0
    # A plain `kill` unwinds like ^C: servers stopped, temporary directory removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    limit = raise_fd_limit()
    if max(plan.sizes) + 100 > limit:
        print(f"open-file limit {limit} is too low for {max(plan.sizes)} connections")
        return 2
    info = machine_info() | {
        "versions": package_versions(
            ("uvicorn", "websockets", "uvloop", "fastapi", "python-socketio", "python-engineio")
        )
    }
    started = time.monotonic()
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="ws-fanout-") as tmp:
        workdir = Path(tmp)
        db_path = workdir / "roomler.db"
        print(f"seeding {max(plan.sizes):,} users ...", flush=True)
        population = seed_population(db_path, max(plan.sizes), plan)
        for size in plan.sizes:
            for impl in plan.impls:
                if args.settle > 0:
                    busy = wait_for_quiet_machine(args.settle, QUIET_CORES)
                    print(f"  machine busy {100 * busy:.0f}% of a core before this server")
                results.append(run_case(impl, size, population, plan, workdir, db_path))
    text = report(results, plan, info)
    print()
    print(text)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    if args.json:
        payload = {
            "machine": info,
            "plan": asdict(plan),
            "results": [asdict(r) | {"kb_per_connection": r.kb_per_connection} for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
