"""Conference join storm: up to 500 participants join one conference in batches of 10.

The reference implementation's stress test, with every step real. One command
(`python benchmarks/join_storm.py`, `--quick` for 50) runs:

1. `python -m roomler serve` as a subprocess on 127.0.0.1 with a fresh SQLite database,
   `--workers` SFU worker processes and an RTC port range big enough for two UDP ports per
   participant in one worker (40000 and up by default);
2. an owner registers with a workspace, creates a conference and starts it (the first
   start forks the SFU workers: `cold start`); the server's RSS and CPU time are read here;
3. for each batch of `--batch` (10) participants, up to `--max` (500):
   - **registration**: each registers (`POST /api/auth/register`, which hashes the
     password with argon2id) and the owner adds it to the workspace
     (`POST /api/tenant/{tid}/member`); all of the batch at once. Timed on its own, as
     `register` and `add member`, and never counted in the join latency;
   - **join**: then all of the batch at once, each participant:
     a. `POST /api/tenant/{tid}/conference/{id}/join` (REST join),
     b. opens its WebSocket and waits for the `connected` frame (WS open),
     c. sends `media:join` and waits for `media:router_capabilities` and
        `media:transport_created` (media:join),
     d. connects both transports as a browser does: for each, sends
        `media:connect_transport` with its DTLS fingerprint and at the same time runs an
        ICE connectivity check (STUN Binding with USE-CANDIDATE) from its own UDP socket
        and then a DTLS 1.2 handshake as the DTLS client (OpenSSL, the SFU's own
        `DtlsEndpoint`), with the SRTP keys exported (connect + DTLS).
     **Join latency** is a participant's time from the start of (a) until both
     `media:transport_connected` replies are in and both DTLS handshakes are complete:
     (a) + (b) + (c) + (d), each reported on its own too;
   - the server's RSS (web process + SFU workers, VmRSS from /proc) and CPU time are read
     after every batch.
   Participants stay connected to the end (their WebSocket open, their UDP sockets
   answering, an ICE consent check every ~5 s as browsers send, RFC 7675), so the server
   carries all of them: that is what the RSS growth measures.
4. The report: per batch p50/p95 join latency, failures, server RSS, the CPU each join
   cost (web, SFU workers, load generators: /proc times around the batch's joins) and the
   cores the rest of the machine used meanwhile; then the totals: failures,
   join latency percentiles over all participants with its parts, registration
   separately, server RSS before/after and per participant, server CPU seconds (web and
   workers), the load generators' and the rest of the machine's CPU.

The load generator runs in `--procs` processes (participants dealt round-robin), each an
asyncio loop with its own HTTP client; the orchestrator (this process) starts batches in
all of them at once and reads /proc. Every wait is bounded (`--step-timeout` per step,
`--deadline` for the whole run: no batch starts after it). All traffic stays on loopback:
127.0.0.1; the participants' UDP sockets are on 127.0.0.2, so they never take a port
of the server's RTC range. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import statistics
import struct
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from aioice import stun
from harness import (
    HOST,
    LoadProcesses,
    RoomlerServer,
    children,
    cpu_secs,
    machine_busy_secs,
    machine_line,
    percentile,
    quantiles,
    raise_fd_limit,
    rss_kb,
    run_load_process,
    start_roomler,
)
from websockets.asyncio.client import ClientConnection, connect

from roomler.sfu.certificate import DtlsCertificate
from roomler.sfu.demux import PacketKind, classify
from roomler.sfu.dtls import DtlsEndpoint, DtlsState

PEER_HOST = "127.0.0.2"  # the participants' UDP sockets: never a port of the RTC range
JWT_SECRET = "join-storm-benchmark-secret-" + "x" * 16  # >= 32 bytes (RFC 7518 section 3.2)
PASSWORD = "join storm password"
# ICE: a Binding request is sent again after this long, this many times (RFC 8445
# paces checks at 50 ms; on loopback a first answer takes well under a millisecond).
STUN_RETRY = 0.2
STUN_ATTEMPTS = 10
# RFC 7675 section 5.1: browsers check consent every 5 s (randomised 4..6 s).
CONSENT_INTERVAL = (4.0, 6.0)


# --- figures ---------------------------------------------------------------------------------


@dataclass
class Registration:
    index: int
    ok: bool
    register_ms: float = 0.0
    member_ms: float = 0.0
    error: str = ""


@dataclass
class Join:
    index: int
    ok: bool
    rest_ms: float = 0.0
    ws_ms: float = 0.0
    media_join_ms: float = 0.0
    connect_ms: float = 0.0
    total_ms: float = 0.0
    error: str = ""


@dataclass
class Usage:
    """What /proc says about the server at one moment."""

    web_rss_mb: float
    workers_rss_mb: float
    web_cpu_s: float
    workers_cpu_s: float
    generators_cpu_s: float
    machine_busy_s: float
    at: float

    @property
    def rss_mb(self) -> float:
        return self.web_rss_mb + self.workers_rss_mb

    @property
    def cpu_s(self) -> float:
        return self.web_cpu_s + self.workers_cpu_s


@dataclass
class Batch:
    number: int
    connected: int  # participants connected after this batch
    registrations: list[Registration]
    joins: list[Join]
    wall_ms: float
    before_join: Usage  # after the registrations, as the joins begin
    usage: Usage  # after the joins

    def join_cpu_ms(self) -> tuple[float, float, float]:
        """CPU milliseconds per joined participant: server web, SFU workers, load generators."""
        joined = max(1, sum(j.ok for j in self.joins))
        before, after = self.before_join, self.usage
        return (
            (after.web_cpu_s - before.web_cpu_s) * 1000 / joined,
            (after.workers_cpu_s - before.workers_cpu_s) * 1000 / joined,
            (after.generators_cpu_s - before.generators_cpu_s) * 1000 / joined,
        )

    def other_load(self) -> float:
        """Cores used by the rest of the machine during the joins (other people's work)."""
        before, after = self.before_join, self.usage
        ours = after.cpu_s - before.cpu_s + after.generators_cpu_s - before.generators_cpu_s
        seconds = after.at - before.at
        busy = after.machine_busy_s - before.machine_busy_s
        return max(0.0, busy - ours) / seconds if seconds > 0 else math.nan


# --- /proc ---------------------------------------------------------------------------------


def usage(server_pid: int, generator_pids: Iterable[int]) -> Usage:
    workers = children(server_pid)
    return Usage(
        web_rss_mb=rss_kb(server_pid) / 1024,
        workers_rss_mb=sum(rss_kb(pid) for pid in workers) / 1024,
        web_cpu_s=cpu_secs(server_pid),
        workers_cpu_s=sum(cpu_secs(pid) for pid in workers),
        generators_cpu_s=sum(cpu_secs(pid) for pid in generator_pids),
        machine_busy_s=machine_busy_secs(),
        at=time.monotonic(),
    )


# --- the server ----------------------------------------------------------------------------


def rtc_port_range(rtc_min: int, participants: int, workers: int) -> tuple[int, int]:
    """A range whose every worker share holds 2 ports per participant, plus some slack.

    The pool cuts the range into equal shares per worker and a conference's transports
    all live in the one worker that holds its router.
    """
    share = 2 * participants + 50
    return rtc_min, rtc_min + share * workers - 1


def start_server(
    directory: Path, workers: int, rtc: tuple[int, int], extra_env: dict[str, str]
) -> RoomlerServer:
    settings = {
        "ROOMLER__APP__DATA_DIR": str(directory / "data"),
        "ROOMLER__DATABASE__URL": f"sqlite+aiosqlite:///{directory / 'roomler.db'}",
        "ROOMLER__JWT__SECRET": JWT_SECRET,
        "ROOMLER__MEDIASOUP__NUM_WORKERS": str(workers),
        "ROOMLER__MEDIASOUP__LISTEN_IP": HOST,
        "ROOMLER__MEDIASOUP__RTC_MIN_PORT": str(rtc[0]),
        "ROOMLER__MEDIASOUP__RTC_MAX_PORT": str(rtc[1]),
        # Every participant registers from this one address.
        "ROOMLER__AUTH__SIGNUP_PER_ADDRESS": "1000000",
        **extra_env,
    }
    return start_roomler(directory, settings)


@dataclass(frozen=True)
class Setup:
    """What every load generator needs to know about the conference."""

    base: str
    tenant_id: str
    conference_id: str
    owner_token: str
    run_id: str
    step_timeout: float


def owner_setup(server: RoomlerServer, run_id: str, step_timeout: float) -> tuple[Setup, float]:
    """Register the owner with a workspace, create and start the conference.

    Returns the setup and the milliseconds the start took (it forks the SFU workers).
    """
    with httpx.Client(base_url=server.base, timeout=step_timeout) as http:
        response = http.post(
            "/api/auth/register",
            json={
                "email": f"owner-{run_id}@storm.example",
                "username": f"owner{run_id}",
                "display_name": "Storm owner",
                "password": PASSWORD,
                "tenant_name": "Storm",
                "tenant_slug": f"storm-{run_id}",
            },
        )
        response.raise_for_status()
        token = response.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        [tenant] = http.get("/api/tenant", headers=headers).json()
        base = f"/api/tenant/{tenant['id']}/conference"
        conference = http.post(base, json={"subject": "Join storm"}, headers=headers)
        conference.raise_for_status()
        conference_id = conference.json()["id"]
        began = time.perf_counter()
        http.post(f"{base}/{conference_id}/start", headers=headers).raise_for_status()
        start_ms = (time.perf_counter() - began) * 1000
    setup = Setup(server.base, tenant["id"], conference_id, token, run_id, step_timeout)
    return setup, start_ms


# --- one participant's UDP side: ICE check, DTLS, consent ----------------------------------


class _PeerProtocol(asyncio.DatagramProtocol):
    def __init__(self, peer: WirePeer) -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.peer.datagram_received(data)


class WirePeer:
    """The client end of one WebRTC transport, as a browser's PeerConnection is.

    Adapted from the SFU tests' peer (tests/sfu/engine_client.py), with futures instead of
    polling: it checks the SFU's ICE-lite candidate with STUN (ICE-CONTROLLING,
    USE-CANDIDATE, RFC 8445 section 7.2), runs DTLS as the client with the SFU's
    `DtlsEndpoint` (OpenSSL over memory BIOs) and keeps the SRTP keys it exports.
    """

    def __init__(self, transport: dict[str, Any], certificate: DtlsCertificate) -> None:
        candidate = transport["ice_candidates"][0]
        self.remote = (candidate["ip"], candidate["port"])
        self.remote_ice = transport["ice_parameters"]
        self.remote_fingerprints = transport["dtls_parameters"]["fingerprints"]
        self.certificate = certificate
        self.ufrag = secrets.token_hex(4)
        self.tie_breaker = struct.unpack("!Q", os.urandom(8))[0]
        self.loop = asyncio.get_running_loop()
        self.udp: asyncio.DatagramTransport | None = None
        self.dtls: DtlsEndpoint | None = None
        self.connected: asyncio.Future[None] = self.loop.create_future()
        self._answers: dict[bytes, asyncio.Future[None]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self.next_consent = 0.0

    async def open(self) -> None:
        self.udp, _ = await self.loop.create_datagram_endpoint(
            lambda: _PeerProtocol(self), local_addr=(PEER_HOST, 0)
        )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.udp is not None:
            self.udp.close()
        for waiter in (self.connected, *self._answers.values()):
            if not waiter.done():
                waiter.cancel()

    def dtls_parameters(self) -> dict[str, Any]:
        fingerprint = self.certificate.fingerprint("sha-256")
        return {"role": "client", "fingerprints": [{"algorithm": "sha-256", "value": fingerprint}]}

    async def connect(self) -> None:
        """ICE check, then the DTLS handshake; returns once the SRTP keys are exported."""
        await self.ice_check(nominate=True)
        self.dtls = DtlsEndpoint(self.certificate, "client")
        self.dtls.set_remote_fingerprints(self.remote_fingerprints)
        self.dtls.start(self.loop.time())
        self._flush()
        await self.connected

    async def ice_check(self, *, nominate: bool) -> None:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{self.remote_ice['usernameFragment']}:{self.ufrag}"
        request.attributes["PRIORITY"] = 1853824767
        request.attributes["ICE-CONTROLLING"] = self.tie_breaker
        if nominate:
            request.attributes["USE-CANDIDATE"] = None
        request.add_message_integrity(self.remote_ice["password"].encode())
        request.add_fingerprint()
        answered = self.loop.create_future()
        self._answers[request.transaction_id] = answered
        data = bytes(request)
        try:
            for _ in range(STUN_ATTEMPTS):
                self._send(data)
                done, _ = await asyncio.wait([answered], timeout=STUN_RETRY)
                if done:
                    answered.result()  # raises on a STUN error response
                    return
            raise TimeoutError(f"no STUN answer from {self.remote} after {STUN_ATTEMPTS} tries")
        finally:
            self._answers.pop(request.transaction_id, None)

    def send_consent_check(self) -> None:
        """An RFC 7675 consent check; the answer is not waited for."""
        task = asyncio.ensure_future(self.ice_check(nominate=False))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _send(self, data: bytes) -> None:
        if self.udp is not None and not self.udp.is_closing():
            self.udp.sendto(data, self.remote)

    def datagram_received(self, data: bytes) -> None:
        kind = classify(data)
        if kind is PacketKind.STUN:
            try:
                message = stun.parse_message(data)
            except ValueError:
                return
            waiter = self._answers.get(message.transaction_id)
            if waiter is not None and not waiter.done():
                if message.message_class == stun.Class.RESPONSE:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(RuntimeError(f"STUN error from {self.remote}"))
        elif kind is PacketKind.DTLS and self.dtls is not None:
            self.dtls.receive(data, self.loop.time())
            self._flush()

    def _flush(self) -> None:
        assert self.dtls is not None
        for datagram in self.dtls.datagrams_to_send():
            self._send(datagram)
        state = self.dtls.state
        if not self.connected.done():
            if state is DtlsState.CONNECTED and self.dtls.srtp_keys is not None:
                self.connected.set_result(None)
            elif state in (DtlsState.FAILED, DtlsState.CLOSED):
                self.connected.set_exception(RuntimeError(f"DTLS {state.name.lower()}"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.dtls.get_timer()
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer, when)

    def _on_timer(self, when: float) -> None:
        assert self.dtls is not None
        self._timer = None
        self.dtls.handle_timer(max(when, self.loop.time()))
        self._flush()


# --- one participant -----------------------------------------------------------------------


class SignalingError(Exception):
    pass


class Participant:
    """One browser tab: an account, a WebSocket, two transports."""

    def __init__(self, index: int, setup: Setup, http: httpx.AsyncClient) -> None:
        self.index = index
        self.setup = setup
        self.http = http
        self.name = f"p{setup.run_id}x{index}"
        self.user_id = ""
        self.token = ""
        self.ws: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None
        self.peers: list[WirePeer] = []
        self._waiting: dict[tuple[str, str], asyncio.Future[dict[str, Any]]] = {}
        self._requests = 0

    # registration (timed apart from the join)

    async def register(self) -> Registration:
        result = Registration(self.index, ok=False)
        try:
            began = time.perf_counter()
            response = await self.http.post(
                "/api/auth/register",
                json={
                    "email": f"{self.name}@storm.example",
                    "username": self.name,
                    "display_name": f"Participant {self.index}",
                    "password": PASSWORD,
                },
            )
            response.raise_for_status()
            body = response.json()
            self.token, self.user_id = body["access_token"], body["user"]["id"]
            added = time.perf_counter()
            result.register_ms = (added - began) * 1000
            response = await self.http.post(
                f"/api/tenant/{self.setup.tenant_id}/member",
                json={"user_id": self.user_id},
                headers={"Authorization": f"Bearer {self.setup.owner_token}"},
            )
            response.raise_for_status()
            result.member_ms = (time.perf_counter() - added) * 1000
            result.ok = True
        except Exception as exc:
            result.error = describe(exc)
        return result

    # the join (timed)

    async def join(self, certificate: DtlsCertificate) -> Join:
        result = Join(self.index, ok=False)
        timeout = self.setup.step_timeout
        step = "REST join"
        try:
            began = time.perf_counter()
            await asyncio.wait_for(self._rest_join(), timeout)
            t_rest = time.perf_counter()
            step = "WebSocket open"
            await asyncio.wait_for(self._open_ws(), timeout)
            t_ws = time.perf_counter()
            step = "media:join"
            created = await asyncio.wait_for(self._media_join(), timeout)
            t_media = time.perf_counter()
            step = "connect + DTLS"
            transports = [created["send_transport"], created["recv_transport"]]
            await asyncio.wait_for(self._connect_all(transports, certificate), timeout)
            done = time.perf_counter()
        except Exception as exc:
            result.error = f"{step}: {describe(exc)}"
            return result
        result.ok = True
        result.rest_ms = (t_rest - began) * 1000
        result.ws_ms = (t_ws - t_rest) * 1000
        result.media_join_ms = (t_media - t_ws) * 1000
        result.connect_ms = (done - t_media) * 1000
        result.total_ms = (done - began) * 1000
        return result

    async def _rest_join(self) -> None:
        path = f"/api/tenant/{self.setup.tenant_id}/conference/{self.setup.conference_id}/join"
        response = await self.http.post(path, headers={"Authorization": f"Bearer {self.token}"})
        response.raise_for_status()

    async def _open_ws(self) -> None:
        url = self.setup.base.replace("http://", "ws://") + f"/ws?token={self.token}"
        self.ws = await connect(url, max_size=None, compression=None)
        first = json.loads(await self.ws.recv())
        if first.get("type") != "connected":
            raise SignalingError(f"expected the connected frame, got {first}")
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(Exception):
            async for text in self.ws:
                # Presence and the like are most of the traffic: parse media frames only.
                if '"media:' not in text[:40]:
                    continue
                frame = json.loads(text)
                self._deliver(frame)
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(SignalingError("the WebSocket closed"))

    def _deliver(self, frame: dict[str, Any]) -> None:
        request_id = str(frame.get("request_id", ""))
        if frame["type"] == "media:error":
            for (_, rid), waiter in self._waiting.items():
                if rid == request_id and not waiter.done():
                    waiter.set_exception(SignalingError(frame["data"]["message"]))
            return
        reply = self._waiting.get((frame["type"], request_id))
        if reply is not None and not reply.done():
            reply.set_result(frame["data"])

    async def _request(
        self, message_type: str, replies: list[str], **data: Any
    ) -> list[dict[str, Any]]:
        """Send a media request; the data of each expected reply, in order."""
        assert self.ws is not None
        self._requests += 1
        request_id = f"r{self._requests}"
        loop = asyncio.get_running_loop()
        waiters = [loop.create_future() for _ in replies]
        for reply, waiter in zip(replies, waiters, strict=True):
            self._waiting[(reply, request_id)] = waiter
        try:
            body = {"conference_id": self.setup.conference_id, **data}
            frame = {"type": message_type, "data": body, "request_id": request_id}
            await self.ws.send(json.dumps(frame))
            return list(await asyncio.gather(*waiters))
        finally:
            for reply in replies:
                self._waiting.pop((reply, request_id), None)

    async def _media_join(self) -> dict[str, Any]:
        _, created = await self._request(
            "media:join", ["media:router_capabilities", "media:transport_created"]
        )
        return created

    async def _connect_all(
        self, transports: list[dict[str, Any]], certificate: DtlsCertificate
    ) -> None:
        for transport in transports:
            peer = WirePeer(transport, certificate)
            self.peers.append(peer)
            await peer.open()
        steps: list[Awaitable[Any]] = []
        for transport, peer in zip(transports, self.peers, strict=True):
            steps.append(
                self._request(
                    "media:connect_transport",
                    ["media:transport_connected"],
                    transport_id=transport["id"],
                    dtls_parameters=peer.dtls_parameters(),
                )
            )
            steps.append(peer.connect())
        await asyncio.gather(*steps)
        now = asyncio.get_running_loop().time()
        for peer in self.peers:
            peer.next_consent = now + _consent_delay()

    async def close(self) -> None:
        for peer in self.peers:
            peer.close()
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            self.reader.cancel()


def _consent_delay() -> float:
    low, high = CONSENT_INTERVAL
    return low + (high - low) * secrets.randbelow(1000) / 1000


def describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}: {exc.response.text[:200]}"
    return f"{type(exc).__name__}: {exc}"[:300]


# --- the load generator process ------------------------------------------------------------


class Generator:
    """One load-generator process: its participants, driven by the orchestrator's commands."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.certificate = DtlsCertificate.generate()
        self.participants: dict[int, Participant] = {}
        self.http = httpx.AsyncClient(
            base_url=setup.base,
            timeout=setup.step_timeout,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def register(self, indices: list[int]) -> list[Registration]:
        for index in indices:
            self.participants[index] = Participant(index, self.setup, self.http)
        return list(await asyncio.gather(*(self.participants[i].register() for i in indices)))

    async def join(self, indices: list[int]) -> list[Join]:
        joined = [self.participants[i] for i in indices if self.participants[i].token]
        results = list(await asyncio.gather(*(p.join(self.certificate) for p in joined)))
        for result in results:
            if not result.ok:  # a failed participant leaves: it holds nothing on the server
                await self.participants.pop(result.index).close()
        return results

    async def keep_consent(self) -> None:
        """Consent checks for every connected transport, each every 4..6 s (RFC 7675)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.25)
            now = loop.time()
            for participant in list(self.participants.values()):
                for peer in participant.peers:
                    if peer.next_consent and now >= peer.next_consent:
                        peer.next_consent = now + _consent_delay()
                        peer.send_consent_check()

    async def close(self) -> None:
        await asyncio.gather(*(p.close() for p in self.participants.values()))
        await self.http.aclose()


def generator_process(conn: Connection, setup: Setup) -> None:
    async def generator() -> Callable[[str, Any], Awaitable[Any]]:
        participants = Generator(setup)
        consent = asyncio.create_task(participants.keep_consent())

        async def handle(command: str, indices: list[int]) -> Any:
            if command == "register":
                return [asdict(r) for r in await participants.register(indices)]
            if command == "join":
                return [asdict(j) for j in await participants.join(indices)]
            consent.cancel()
            await participants.close()
            return "closed"

        return handle

    run_load_process(conn, generator)


class Generators:
    """The orchestrator's handle on the load-generator processes."""

    def __init__(self, setup: Setup, count: int) -> None:
        self.load = LoadProcesses(generator_process, [(setup,)] * count)

    @property
    def pids(self) -> list[int]:
        return self.load.pids

    def run(self, command: str, indices: list[int], timeout: float) -> list[dict[str, Any]]:
        """Send `command` for `indices` (dealt round-robin) to all at once; gather the results."""
        count = len(self.load.pipes)
        shares = [indices[k::count] for k in range(count)]
        return [r for answer in self.load.ask(command, shares, timeout) for r in answer]

    def close(self) -> None:
        self.load.close(30)


# --- the run -------------------------------------------------------------------------------


@dataclass
class Run:
    participants: int
    batch_size: int
    workers: int
    procs: int
    rtc_ports: tuple[int, int]
    cold_start_ms: float
    before: Usage
    batches: list[Batch] = field(default_factory=list)
    after_settle: Usage | None = None
    stopped_early: str = ""

    @property
    def joins(self) -> list[Join]:
        return [j for b in self.batches for j in b.joins]

    @property
    def registrations(self) -> list[Registration]:
        return [r for b in self.batches for r in b.registrations]


def storm(args: argparse.Namespace, directory: Path, emit: Callable[[str], None]) -> Run:
    rtc = rtc_port_range(args.rtc_min, args.max, args.workers)
    server = start_server(directory, args.workers, rtc, dict(args.server_env))
    generators: Generators | None = None
    try:
        setup, start_ms = owner_setup(server, secrets.token_hex(3), args.step_timeout)
        generators = Generators(setup, args.procs)
        time.sleep(1.0)  # let the fresh workers and generators finish importing
        run = Run(
            args.max, args.batch, args.workers, args.procs, rtc, round(start_ms, 1),
            usage(server.process.pid, generators.pids),
        )  # fmt: skip
        emit(header(run))
        deadline = time.monotonic() + args.deadline
        connected = 0
        for number, first in enumerate(range(0, args.max, args.batch), start=1):
            if time.monotonic() > deadline:
                run.stopped_early = f"the --deadline of {args.deadline:.0f} s passed"
                break
            if server.process.poll() is not None:
                run.stopped_early = "the server exited"
                break
            indices = list(range(first, min(first + args.batch, args.max)))
            step = args.step_timeout * 4
            registrations = [Registration(**r) for r in generators.run("register", indices, step)]
            before_join = usage(server.process.pid, generators.pids)
            began = time.perf_counter()
            joins = [Join(**j) for j in generators.run("join", indices, step)]
            wall_ms = (time.perf_counter() - began) * 1000
            connected += sum(j.ok for j in joins)
            batch = Batch(
                number, connected, registrations, joins, wall_ms, before_join,
                usage(server.process.pid, generators.pids),
            )  # fmt: skip
            run.batches.append(batch)
            emit(batch_line(batch, run.before))
        time.sleep(args.settle)
        run.after_settle = usage(server.process.pid, generators.pids)
        return run
    finally:
        if generators is not None:
            generators.close()
        server.stop()


# --- the report ----------------------------------------------------------------------------


def header(run: Run) -> str:
    return (
        f"join storm: {run.participants} participants in batches of {run.batch_size}, "
        f"{run.workers} SFU workers, RTC ports {run.rtc_ports[0]}-{run.rtc_ports[1]}, "
        f"{run.procs} load-generator process(es)\n"
        f"machine: {machine_line()}\n"
        f"cold start (first conference start, forks the workers): {run.cold_start_ms:.0f} ms; "
        f"server before: RSS {run.before.rss_mb:.1f} MB "
        f"(web {run.before.web_rss_mb:.1f} + workers {run.before.workers_rss_mb:.1f})\n"
        f"{'batch':>5} {'conn':>5} {'fail':>4} {'join p50':>9} {'p95':>7} {'max':>7} "
        f"{'register p50':>13} {'RSS MB':>7} {'+MB/part':>8} {'CPU s':>6} "
        f"{'ms CPU/join web+sfu+gen':>23} {'other':>5}"
    )


def batch_line(batch: Batch, before: Usage) -> str:
    totals = [j.total_ms for j in batch.joins if j.ok]
    registers = [r.register_ms for r in batch.registrations if r.ok]
    failures = sum(not j.ok for j in batch.joins) + sum(not r.ok for r in batch.registrations)
    per_participant = (
        (batch.usage.rss_mb - before.rss_mb) / batch.connected if batch.connected else math.nan
    )
    line = (
        f"{batch.number:>5} {batch.connected:>5} {failures:>4} "
        f"{percentile(totals, 0.5):>7.1f}ms {percentile(totals, 0.95):>5.1f}ms "
        f"{max(totals, default=math.nan):>5.1f}ms {percentile(registers, 0.5):>11.1f}ms "
        f"{batch.usage.rss_mb:>7.1f} {per_participant:>8.3f} "
        f"{batch.usage.cpu_s - before.cpu_s:>6.1f} "
        f"{'{:.1f}+{:.1f}+{:.1f}'.format(*batch.join_cpu_ms()):>23} {batch.other_load():>5.2f}"
    )
    errors = [j.error for j in batch.joins if not j.ok] + [
        r.error for r in batch.registrations if not r.ok
    ]
    if errors:
        line += "\n      failures: " + "; ".join(sorted(set(errors))[:3])
    return line


def _per_join_cpu(batches: list[Batch]) -> tuple[float, float, float]:
    joined = max(1, sum(j.ok for b in batches for j in b.joins))
    totals = [0.0, 0.0, 0.0]
    for batch in batches:
        ok = sum(j.ok for j in batch.joins)
        for k, value in enumerate(batch.join_cpu_ms()):
            totals[k] += value * max(ok, 1)
    return totals[0] / joined, totals[1] / joined, totals[2] / joined


def summary(run: Run) -> str:
    joins = [j for j in run.joins if j.ok]
    registrations = [r for r in run.registrations if r.ok]
    failed_joins = [j for j in run.joins if not j.ok]
    failed_registrations = [r for r in run.registrations if not r.ok]
    connected = len(joins)
    last = run.batches[-1].usage if run.batches else run.before
    end = run.after_settle or last
    elapsed = last.at - run.before.at
    server_cpu = last.cpu_s - run.before.cpu_s
    generators_cpu = last.generators_cpu_s - run.before.generators_cpu_s
    other_cpu = last.machine_busy_s - run.before.machine_busy_s - server_cpu - generators_cpu
    batch_means = [
        statistics.fmean([j.total_ms for j in b.joins if j.ok] or [math.nan]) for b in run.batches
    ]
    per_join = _per_join_cpu(run.batches)
    batch_p95 = [percentile([j.total_ms for j in b.joins if j.ok], 0.95) for b in run.batches]
    lines = [
        "",
        f"participants connected: {connected} of {run.participants}; "
        f"failures: {len(failed_joins)} joins, {len(failed_registrations)} registrations"
        + (f"; stopped early: {run.stopped_early}" if run.stopped_early else ""),
        f"join latency (REST join -> both transports connected and DTLS done), "
        f"all participants: {quantiles([j.total_ms for j in joins])}",
        f"  batch average: mean {statistics.fmean(batch_means):.1f} ms, "
        f"worst batch p95 {max(batch_p95):.1f} ms"
        if run.batches
        else "  no batch ran",
        f"  REST join:            {quantiles([j.rest_ms for j in joins])}",
        f"  WebSocket open:       {quantiles([j.ws_ms for j in joins])}",
        f"  media:join->created:  {quantiles([j.media_join_ms for j in joins])}",
        f"  connect + DTLS (x2):  {quantiles([j.connect_ms for j in joins])}",
        "registration (not in the join latency):",
        f"  register (argon2id):  {quantiles([r.register_ms for r in registrations])}",
        f"  add to workspace:     {quantiles([r.member_ms for r in registrations])}",
        f"server RSS: before {run.before.rss_mb:.1f} MB (web {run.before.web_rss_mb:.1f} + "
        f"workers {run.before.workers_rss_mb:.1f}), after {last.rss_mb:.1f} MB "
        f"(web {last.web_rss_mb:.1f} + workers {last.workers_rss_mb:.1f}), "
        f"+{last.rss_mb - run.before.rss_mb:.1f} MB = "
        f"{(last.rss_mb - run.before.rss_mb) / max(connected, 1):.3f} MB per participant "
        f"(web +{(last.web_rss_mb - run.before.web_rss_mb) / max(connected, 1):.3f}, "
        f"workers +{(last.workers_rss_mb - run.before.workers_rss_mb) / max(connected, 1):.3f})",
        f"  {end.rss_mb:.1f} MB after {(end.at - last.at):.0f} s more with everyone connected",
        f"server CPU over the storm ({elapsed:.1f} s): {server_cpu:.1f} s "
        f"(web {last.web_cpu_s - run.before.web_cpu_s:.1f} + "
        f"workers {last.workers_cpu_s - run.before.workers_cpu_s:.1f}); "
        f"idle with everyone connected: {end.cpu_s - last.cpu_s:.1f} s in {end.at - last.at:.0f} s",
        f"load generators CPU: {generators_cpu:.1f} s; "
        f"everything else on the machine: {max(other_cpu, 0.0):.1f} s",
        f"CPU per join, join phases only: web {per_join[0]:.1f} ms + SFU workers "
        f"{per_join[1]:.1f} ms; load generators {per_join[2]:.1f} ms; other people's work "
        f"used {statistics.fmean([b.other_load() for b in run.batches] or [math.nan]):.2f} "
        "cores on average during the joins",
    ]
    return "\n".join(lines)


def _setting(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.startswith("ROOMLER__"):
        raise argparse.ArgumentTypeError(f"expected ROOMLER__SECTION__KEY=VALUE, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max", type=int, default=500, help="participants in all")
    parser.add_argument("--batch", type=int, default=10, help="participants joining at once")
    parser.add_argument("--quick", action="store_true", help="50 participants")
    parser.add_argument("--workers", type=int, default=2, help="SFU worker processes")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument("--rtc-min", type=int, default=40000, help="first RTC port")
    parser.add_argument("--step-timeout", type=float, default=30.0, help="seconds per step")
    parser.add_argument("--deadline", type=float, default=540.0, help="no batch starts after")
    parser.add_argument("--settle", type=float, default=10.0, help="idle seconds at the end")
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        type=_setting,
        metavar="ROOMLER__KEY=VALUE",
        help="a setting for the server (repeatable), for A/B runs",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.max = 50
    if args.max < 1 or args.batch < 1 or args.procs < 1:
        parser.error("--max, --batch and --procs must be at least 1")
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="join-storm-") as tmp:
        run = storm(args, Path(tmp), lambda line: print(line, flush=True))
    print(summary(run), flush=True)
    if args.json is not None:
        args.json.write_text(json.dumps(asdict(run), indent=2))
    failures = sum(not j.ok for j in run.joins) + sum(not r.ok for r in run.registrations)
    return 1 if failures or run.stopped_early else 0


if __name__ == "__main__":
    raise SystemExit(main())
