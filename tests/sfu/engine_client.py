"""A minimal WebRTC peer for the engine tests: what a browser does on the wire.

`WebRtcPeer` owns a UDP socket on 127.0.0.1, checks the engine's ICE-lite
candidate with STUN Binding requests (aioice.stun, ICE-CONTROLLING,
USE-CANDIDATE), runs DTLS with the project's `DtlsEndpoint`, and speaks SRTP
with its `SrtpContext`. Everything it receives is kept for assertions.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import struct
from collections.abc import Callable
from typing import Any

from aioice import stun

from roomler.sfu.certificate import DtlsCertificate
from roomler.sfu.demux import PacketKind, classify
from roomler.sfu.dtls import DtlsEndpoint, DtlsState
from roomler.sfu.engine import EngineSettings, WorkerHandler
from roomler.sfu.rtcp import RtcpPacket, parse_rtcp, serialize_rtcp
from roomler.sfu.rtp import RtpPacket
from roomler.sfu.srtp import SrtpContext

_CERTIFICATE: DtlsCertificate | None = None


def peer_certificate() -> DtlsCertificate:
    global _CERTIFICATE
    if _CERTIFICATE is None:
        _CERTIFICATE = DtlsCertificate.generate()
    return _CERTIFICATE


async def wait_for(predicate: Callable[[], Any], timeout: float = 3.0) -> Any:
    """Poll ``predicate`` until it is truthy; AssertionError after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, peer: WebRtcPeer) -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.peer._on_datagram(data, addr)


class WebRtcPeer:
    """One side of a PeerConnection toward the engine's WebRtcTransport."""

    def __init__(self, transport_params: dict[str, Any], *, dtls_role: str = "client") -> None:
        candidate = transport_params["ice_candidates"][0]
        self.remote = (candidate["ip"], candidate["port"])
        self.remote_ice = transport_params["ice_parameters"]
        self.remote_fingerprints = transport_params["dtls_parameters"]["fingerprints"]
        self.dtls_role = dtls_role
        self.ufrag = "peer" + secrets.token_hex(4)
        self.certificate = peer_certificate()
        self.dtls: DtlsEndpoint | None = None
        self.srtp: SrtpContext | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.rtp: list[bytes] = []  # decrypted RTP
        self.raw_rtp: list[bytes] = []  # SRTP as received
        self.rtcp: list[RtcpPacket] = []
        self.stun: list[stun.Message] = []
        self.unprotect_errors: list[str] = []
        self._dtls_timer: asyncio.TimerHandle | None = None
        self.transport_id = ""

    # -- socket ---------------------------------------------------------------

    async def open(self) -> WebRtcPeer:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=("127.0.0.1", 0)
        )
        return self

    @property
    def local_address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return host, port

    def close(self) -> None:
        if self._dtls_timer is not None:
            self._dtls_timer.cancel()
        if self.transport is not None:
            self.transport.close()

    def send_raw(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.sendto(data, self.remote)

    def _on_datagram(self, data: bytes, addr: tuple[Any, ...]) -> None:
        kind = classify(data)
        if kind is PacketKind.STUN:
            self.stun.append(stun.parse_message(data))
        elif kind is PacketKind.DTLS and self.dtls is not None:
            self.dtls.receive(data, asyncio.get_running_loop().time())
            self._flush_dtls()
        elif kind is PacketKind.RTP and self.srtp is not None:
            self.raw_rtp.append(data)
            try:
                self.rtp.append(self.srtp.unprotect_rtp(data))
            except ValueError as exc:
                self.unprotect_errors.append(str(exc))
        elif kind is PacketKind.RTCP and self.srtp is not None:
            self.rtcp.extend(parse_rtcp(self.srtp.unprotect_rtcp(data)))

    # -- ICE ------------------------------------------------------------------

    def binding_request(
        self, *, use_candidate: bool = True, password: str | None = None
    ) -> stun.Message:
        request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
        request.attributes["USERNAME"] = f"{self.remote_ice['usernameFragment']}:{self.ufrag}"
        request.attributes["PRIORITY"] = 1853824767
        request.attributes["ICE-CONTROLLING"] = struct.unpack("!Q", os.urandom(8))[0]
        if use_candidate:
            request.attributes["USE-CANDIDATE"] = None
        key = password if password is not None else self.remote_ice["password"]
        request.add_message_integrity(key.encode())
        return request

    async def ice_check(self, **kwargs: Any) -> stun.Message:
        request = self.binding_request(**kwargs)
        self.send_raw(bytes(request))
        return await wait_for(  # type: ignore[no-any-return]
            lambda: next((m for m in self.stun if m.transaction_id == request.transaction_id), None)
        )

    # -- DTLS -----------------------------------------------------------------

    def dtls_parameters(self, fingerprint: str | None = None) -> dict[str, Any]:
        value = fingerprint or self.certificate.fingerprint("sha-256")
        return {
            "role": self.dtls_role,
            "fingerprints": [{"algorithm": "sha-256", "value": value}],
        }

    def start_dtls(self) -> None:
        loop = asyncio.get_running_loop()
        self.dtls = DtlsEndpoint(self.certificate, self.dtls_role)
        self.dtls.set_remote_fingerprints(self.remote_fingerprints)
        self.dtls.start(loop.time())
        self._flush_dtls()

    def _flush_dtls(self) -> None:
        assert self.dtls is not None
        for datagram in self.dtls.datagrams_to_send():
            self.send_raw(datagram)
        if self.dtls.state is DtlsState.CONNECTED and self.srtp is None:
            assert self.dtls.srtp_keys is not None
            self.srtp = SrtpContext(self.dtls.srtp_keys)
        if self._dtls_timer is not None:
            self._dtls_timer.cancel()
            self._dtls_timer = None
        when = self.dtls.get_timer()
        if when is not None:
            self._dtls_timer = asyncio.get_running_loop().call_at(when, self._on_dtls_timer, when)

    def _on_dtls_timer(self, when: float) -> None:
        assert self.dtls is not None
        self.dtls.handle_timer(max(when, asyncio.get_running_loop().time()))
        self._flush_dtls()

    async def connect(self, handler: Any, transport_id: str) -> None:
        """ICE check, ``transport.connect``, DTLS handshake, SRTP: like a browser."""
        if self.dtls_role == "server":
            self.start_dtls()
        await self.ice_check()
        await handler.handle(
            "transport.connect",
            {"transport_id": transport_id, "dtls_parameters": self.dtls_parameters()},
        )
        if self.dtls_role == "client":
            self.start_dtls()
        await wait_for(lambda: self.srtp is not None)

    # -- media ----------------------------------------------------------------

    def send_rtp(self, packet: RtpPacket | bytes) -> bytes:
        assert self.srtp is not None
        data = packet.serialize() if isinstance(packet, RtpPacket) else packet
        protected = self.srtp.protect_rtp(data)
        self.send_raw(protected)
        return protected

    def send_rtcp(self, packets: list[RtcpPacket]) -> None:
        assert self.srtp is not None
        self.send_raw(self.srtp.protect_rtcp(serialize_rtcp(packets)))

    def received(self, ssrc: int) -> list[RtpPacket]:
        return [p for p in map(RtpPacket.parse, self.rtp) if p.ssrc == ssrc]

    def rtcp_of(self, kind: type) -> list[Any]:
        return [p for p in self.rtcp if isinstance(p, kind)]


#: Short periods so reports and deferred keyframe requests show up quickly.
TEST_SETTINGS = EngineSettings(
    rtcp_interval=0.2, feedback_interval=0.02, keyframe_request_interval=0.3
)
PORT_MIN, PORT_MAX = 42000, 42999


class Harness:
    """A WorkerHandler with its events recorded, and helpers to wire peers to it."""

    def __init__(self, settings: EngineSettings = TEST_SETTINGS) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.handler = WorkerHandler(
            emit=self._emit, loop=asyncio.get_running_loop(), settings=settings
        )
        self.peers: list[WebRtcPeer] = []
        self._ids = 0

    def _emit(self, event: str, target: str, data: dict[str, Any]) -> None:
        self.events.append((event, target, data))

    def new_id(self, prefix: str) -> str:
        self._ids += 1
        return f"{prefix}-{self._ids:04d}-{secrets.token_hex(4)}"

    async def request(self, method: str, **data: Any) -> dict[str, Any]:
        return await self.handler.handle(method, data)

    async def router(self) -> str:
        router_id = self.new_id("router")
        await self.request("router.create", router_id=router_id)
        return router_id

    async def transport(self, router_id: str, **options: Any) -> dict[str, Any]:
        options.setdefault("listen_ip", "127.0.0.1")
        options.setdefault("port_min", PORT_MIN)
        options.setdefault("port_max", PORT_MAX)
        return await self.request(
            "router.create_webrtc_transport",
            router_id=router_id,
            transport_id=self.new_id("transport"),
            **options,
        )

    async def connected_peer(self, router_id: str, *, dtls_role: str = "client") -> WebRtcPeer:
        params = await self.transport(router_id)
        peer = await WebRtcPeer(params, dtls_role=dtls_role).open()
        peer.transport_id = params["id"]
        self.peers.append(peer)
        await peer.connect(self.handler, params["id"])
        return peer

    def events_of(self, event: str, target: str | None = None) -> list[dict[str, Any]]:
        return [d for e, t, d in self.events if e == event and (target is None or t == target)]

    async def close(self) -> None:
        for peer in self.peers:
            peer.close()
        await self.handler.close()
