"""DtlsDriver: two drivers shake hands over in-memory links, with datagrams held on both sides."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from roomler.sfu.certificate import DtlsCertificate
from roomler.sfu.dtls import DtlsEndpoint, DtlsState
from roomler.sfu.engine.dtls_driver import MAX_PENDING_DTLS, DtlsDriver


class Side:
    """One driver whose datagrams go to the other side once it `has_address`."""

    def __init__(self, role: str, certificate: DtlsCertificate) -> None:
        self.role = role
        self.certificate = certificate
        self.has_address = False
        self.sent = 0
        self.peer: Side | None = None
        self.states: list[DtlsState] = []
        self.drops: Counter[str] = Counter()
        self.driver = DtlsDriver(
            asyncio.get_running_loop(),
            send=self.send,
            on_step=self.step,
            count_drop=lambda reason: self.drops.update([reason]),
        )

    def send(self, datagram: bytes) -> bool:
        if not self.has_address or self.peer is None:
            return False
        self.sent += 1
        loop = asyncio.get_running_loop()
        loop.call_soon(self.peer.driver.receive, datagram, loop.time())
        return True

    def step(self, endpoint: DtlsEndpoint) -> None:
        if not self.states or self.states[-1] is not endpoint.state:
            self.states.append(endpoint.state)

    def start(self, peer: Side) -> None:
        fingerprint: dict[str, Any] = {
            "algorithm": "sha-256",
            "value": peer.certificate.fingerprint("sha-256"),
        }
        self.driver.create(self.certificate, self.role, [fingerprint])
        self.driver.start()


async def until(condition: Any, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_held_datagrams_on_both_sides_still_make_a_handshake() -> None:
    certificate = DtlsCertificate.generate()
    client, server = Side("client", certificate), Side("server", DtlsCertificate.generate())
    client.peer, server.peer = server, client
    server.has_address = True  # the server can answer; the client has no ICE address yet
    client.start(server)  # its ClientHello waits for an address
    await asyncio.sleep(0.05)
    assert client.sent == 0
    client.has_address = True
    client.driver.flush_held()  # the ClientHello reaches the server before it started: held
    await asyncio.sleep(0.05)
    assert client.sent >= 1 and server.sent == 0
    server.start(client)
    assert server.sent >= 1  # it answered the held ClientHello at once
    await until(lambda: DtlsState.CONNECTED in client.states + server.states)
    await until(lambda: client.states[-1] is server.states[-1] is DtlsState.CONNECTED)
    endpoints = (client.driver.endpoint, server.driver.endpoint)
    keys = [endpoint.srtp_keys for endpoint in endpoints if endpoint is not None]
    assert len(keys) == 2 and keys[0] is not None and keys[1] is not None
    assert keys[0].profile == keys[1].profile
    client.driver.close()
    server.driver.close()
    assert not client.drops and not server.drops


async def test_a_wrong_fingerprint_fails_the_handshake() -> None:
    client = Side("client", DtlsCertificate.generate())
    server = Side("server", DtlsCertificate.generate())
    stranger = Side("server", DtlsCertificate.generate())
    client.peer, server.peer = server, client
    client.has_address = server.has_address = True
    client.start(stranger)  # expects someone else's certificate
    server.start(client)
    await until(lambda: DtlsState.FAILED in client.states)
    client.driver.close()
    server.driver.close()


async def test_datagrams_before_create_are_capped_and_counted() -> None:
    side = Side("server", DtlsCertificate.generate())
    for _ in range(MAX_PENDING_DTLS + 3):
        side.driver.receive(b"\x16\xfe\xfd", 0.0)
    assert side.drops == Counter({"dtls_before_connect": 3})
    side.driver.close()
