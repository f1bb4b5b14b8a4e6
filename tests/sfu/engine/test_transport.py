"""WebRtcTransport over real UDP on 127.0.0.1: ICE-lite, DTLS, SRTP, drops, ports."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aioice import stun

from roomler.sfu import ice
from roomler.sfu.certificate import DtlsCertificate
from roomler.sfu.rtp import RtpPacket
from tests.sfu.engine_client import PORT_MAX, PORT_MIN, Harness, WebRtcPeer, wait_for


@pytest.fixture
async def engine() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.close()


def _port_is_free(port: int) -> bool:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        return False
    finally:
        sock.close()
    return True


async def test_transport_parameters_have_mediasoup_shape(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)

    assert params["ice_parameters"]["iceLite"] is True
    assert len(params["ice_parameters"]["usernameFragment"]) >= 4
    assert len(params["ice_parameters"]["password"]) >= 22
    [candidate] = params["ice_candidates"]
    assert candidate["type"] == "host" and candidate["protocol"] == "udp"
    assert candidate["ip"] == candidate["address"] == "127.0.0.1"
    assert PORT_MIN <= candidate["port"] <= PORT_MAX
    assert not _port_is_free(candidate["port"])
    dtls = params["dtls_parameters"]
    assert dtls["role"] == "auto"
    assert dtls["fingerprints"][0]["algorithm"] == "sha-256"
    assert len(dtls["fingerprints"][0]["value"].split(":")) == 32


async def test_candidates_announce_the_configured_address(engine: Harness) -> None:
    router_id = await engine.router()
    announced = await engine.transport(router_id, announced_ip="203.0.113.7")
    wildcard = await engine.transport(router_id, listen_ip="0.0.0.0")

    assert announced["ice_candidates"][0]["ip"] == "203.0.113.7"
    # Nothing better to announce for a wildcard bind without announced_ip.
    assert wildcard["ice_candidates"][0]["ip"] == "127.0.0.1"


async def test_ice_answers_valid_checks_and_refuses_bad_credentials(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)
    peer = await WebRtcPeer(params).open()
    engine.peers.append(peer)

    refused = await peer.ice_check(password="x" * 22)
    assert refused.message_class == stun.Class.ERROR
    assert refused.attributes["ERROR-CODE"][0] == 401
    assert engine.events_of("transport.icestatechange", params["id"]) == []

    response = await peer.ice_check(use_candidate=False)
    assert response.message_class == stun.Class.RESPONSE
    assert response.attributes["XOR-MAPPED-ADDRESS"] == peer.local_address
    response = await peer.ice_check()
    assert response.message_class == stun.Class.RESPONSE

    states = [e["ice_state"] for e in engine.events_of("transport.icestatechange", params["id"])]
    assert states == ["connected", "completed"]
    [selected] = engine.events_of("transport.iceselectedtuplechange", params["id"])
    assert selected["ice_selected_tuple"]["remotePort"] == peer.local_address[1]
    stats = await engine.request("transport.get_stats", transport_id=params["id"])
    assert stats["dropReasons"] == {"stun_refused": 1}


async def test_dtls_connects_as_server_for_a_client_peer(engine: Harness) -> None:
    router_id = await engine.router()
    peer = await engine.connected_peer(router_id)

    states = [e["dtls_state"] for e in engine.events_of("transport.dtlsstatechange")]
    assert states == ["connecting", "connected"]
    dump = await engine.request("transport.dump", transport_id=peer.transport_id)
    assert dump["dtlsRole"] == "server"
    assert dump["dtlsState"] == "connected"
    assert dump["iceState"] == "completed"


@pytest.mark.parametrize("remote_role", ["server", "auto"])
async def test_dtls_runs_as_client_when_the_peer_is_server_or_auto(
    engine: Harness, remote_role: str
) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)
    peer = await WebRtcPeer(params, dtls_role="server").open()
    engine.peers.append(peer)
    peer.start_dtls()
    await peer.ice_check()
    parameters = peer.dtls_parameters() | {"role": remote_role}
    result = await engine.request(
        "transport.connect", transport_id=params["id"], dtls_parameters=parameters
    )

    assert result == {"dtls_local_role": "client"}
    await wait_for(lambda: peer.srtp is not None)
    await wait_for(
        lambda: engine.events_of("transport.dtlsstatechange")[-1:] == [{"dtls_state": "connected"}]
    )


async def test_fingerprint_mismatch_fails_and_closes_the_transport(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)
    port = params["ice_candidates"][0]["port"]
    peer = await WebRtcPeer(params).open()
    engine.peers.append(peer)
    await peer.ice_check()
    wrong = DtlsCertificate.generate().fingerprint("sha-256")
    await engine.request(
        "transport.connect", transport_id=params["id"], dtls_parameters=peer.dtls_parameters(wrong)
    )
    peer.start_dtls()

    failed = await wait_for(
        lambda: [
            e for e in engine.events_of("transport.dtlsstatechange") if e["dtls_state"] == "failed"
        ]
    )
    assert "fingerprint mismatch" in failed[0]["reason"]
    assert engine.events_of("transport.close", params["id"]) == [{"reason": failed[0]["reason"]}]
    with pytest.raises(ValueError, match="not found"):
        await engine.request("transport.dump", transport_id=params["id"])
    assert _port_is_free(port)


async def test_garbage_replays_and_strangers_are_dropped_and_counted(engine: Harness) -> None:
    router_id = await engine.router()
    peer = await engine.connected_peer(router_id)
    stranger = await WebRtcPeer(
        await engine.request("transport.dump", transport_id=peer.transport_id)
        | {
            "ice_candidates": [{"ip": "127.0.0.1", "port": peer.remote[1]}],
            "ice_parameters": peer.remote_ice,
            "dtls_parameters": {"fingerprints": []},
        }
    ).open()
    engine.peers.append(stranger)

    packet = RtpPacket(payload_type=96, sequence_number=1, ssrc=1234, payload=b"x" * 20)
    protected = peer.send_rtp(packet)
    peer.send_raw(protected)  # replay
    peer.send_raw(b"\x40" + b"\xff" * 30)  # nothing in RFC 7983
    peer.send_raw(b"\x80\x60" + b"\x00" * 40)  # RTP-looking, not SRTP
    peer.send_raw(b"\xff")  # one byte of nothing
    stranger.send_raw(protected)  # right bytes, unvalidated address
    stranger.send_raw(b"\x16\xfe\xfd" + b"\x00" * 20)  # DTLS-looking from a stranger

    def drops() -> dict[str, int]:
        return engine.handler.objects.transports[peer.transport_id].drops

    await wait_for(lambda: sum(drops().values()) >= 7)
    assert drops()["unknown_ssrc"] == 1  # the first copy decrypted fine
    assert drops()["invalid_rtp"] == 2  # the replay and the forgery
    assert drops()["garbage"] == 2
    assert drops()["unknown_address"] == 2
    # The transport still works.
    response = await peer.ice_check()
    assert response.message_class == stun.Class.RESPONSE
    stats = await engine.request("transport.get_stats", transport_id=peer.transport_id)
    assert stats["droppedPackets"] == 7


async def test_closing_a_transport_frees_its_port_at_once(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)
    port = params["ice_candidates"][0]["port"]

    await engine.request("transport.close", transport_id=params["id"])

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", port))  # raises if the port were still held
    sock.close()
    dump = await engine.request("worker.dump")
    assert port not in dump["ports"]


async def test_a_full_port_range_is_a_clear_error(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id, port_min=PORT_MIN, port_max=PORT_MIN + 1)
    taken = params["ice_candidates"][0]["port"]
    other = PORT_MIN + 1 if taken == PORT_MIN else PORT_MIN
    await engine.transport(router_id, port_min=other, port_max=other)

    with pytest.raises(ValueError, match=f"no free UDP port in {PORT_MIN}..{PORT_MIN + 1}"):
        await engine.transport(router_id, port_min=PORT_MIN, port_max=PORT_MIN + 1)


async def test_peer_moving_to_a_new_address_is_followed(engine: Harness) -> None:
    router_id = await engine.router()
    peer = await engine.connected_peer(router_id)
    moved = await WebRtcPeer(
        {
            "ice_candidates": [{"ip": "127.0.0.1", "port": peer.remote[1]}],
            "ice_parameters": peer.remote_ice,
            "dtls_parameters": {"fingerprints": peer.remote_fingerprints},
        }
    ).open()
    engine.peers.append(moved)
    moved.ufrag = peer.ufrag

    await moved.ice_check()

    selected = engine.events_of("transport.iceselectedtuplechange")
    assert len(selected) == 2
    assert selected[-1]["ice_selected_tuple"]["remotePort"] == moved.local_address[1]
    await asyncio.sleep(0)


def test_connect_and_close_on_uvloop() -> None:
    """Workers run uvloop: the socket handling must behave the same there."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        engine = Harness()
        try:
            router_id = await engine.router()
            peer = await engine.connected_peer(router_id)
            port = peer.remote[1]
            await engine.request("transport.close", transport_id=peer.transport_id)
            assert _port_is_free(port)
        finally:
            await engine.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(scenario())


async def test_client_hello_before_connect_is_kept(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)
    peer = await WebRtcPeer(params).open()
    engine.peers.append(peer)
    await peer.ice_check()
    peer.start_dtls()  # the browser's ClientHello beats the connect request
    await asyncio.sleep(0.05)

    await engine.request(
        "transport.connect", transport_id=params["id"], dtls_parameters=peer.dtls_parameters()
    )

    await wait_for(lambda: peer.srtp is not None)


async def test_dtls_client_waits_for_ice_before_its_client_hello(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)
    peer = await WebRtcPeer(params, dtls_role="server").open()
    engine.peers.append(peer)
    peer.start_dtls()
    await engine.request(
        "transport.connect", transport_id=params["id"], dtls_parameters=peer.dtls_parameters()
    )
    await asyncio.sleep(0.05)  # nowhere to send the ClientHello yet

    await peer.ice_check()

    await wait_for(lambda: peer.srtp is not None, timeout=0.9)  # before any retransmission


async def test_ice_consent_expiry_disconnects_and_a_check_reconnects(
    engine: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    router_id = await engine.router()
    peer = await engine.connected_peer(router_id)
    monkeypatch.setattr(ice, "CONSENT_TIMEOUT", 0.05)

    def states() -> list[str]:
        return [e["ice_state"] for e in engine.events_of("transport.icestatechange")]

    await wait_for(lambda: states()[-1] == "disconnected")
    await peer.ice_check(use_candidate=False)  # a consent refresh on the selected tuple

    assert states() == ["completed", "disconnected", "completed"]
