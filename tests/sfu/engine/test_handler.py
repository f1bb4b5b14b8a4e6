"""WorkerHandler: the request/response contract, its errors and the close cascade."""

from __future__ import annotations

import copy
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from roomler.sfu.codecs import SUPPORTED_RTP_CAPABILITIES
from roomler.sfu.engine import EngineSettings, WorkerHandler
from tests.sfu.engine_client import Harness

FIXTURES = Path(__file__).parent.parent / "fixtures"
VIDEO = json.loads((FIXTURES / "chrome_produce_video.json").read_text())
AUDIO = json.loads((FIXTURES / "chrome_produce_audio.json").read_text())
DEVICE_CAPS = json.loads((FIXTURES / "chrome_device_rtp_capabilities.json").read_text())


@pytest.fixture
async def engine() -> AsyncIterator[Harness]:
    harness = Harness()
    yield harness
    await harness.close()


async def _producer(
    engine: Harness, params: dict[str, Any] = VIDEO, kind: str = "video"
) -> tuple[str, str, str]:
    router_id = await engine.router()
    transport = await engine.transport(router_id)
    producer_id = engine.new_id("producer")
    result = await engine.request(
        "transport.produce",
        transport_id=transport["id"],
        producer_id=producer_id,
        kind=kind,
        rtp_parameters=params,
    )
    assert result == {"type": "simple"}
    return router_id, transport["id"], producer_id


async def _consume(
    engine: Harness, router_id: str, producer_id: str, **extra: Any
) -> dict[str, Any]:
    transport = extra.pop("transport_id", None) or (await engine.transport(router_id))["id"]
    return await engine.request(
        "transport.consume",
        transport_id=transport,
        consumer_id=extra.pop("consumer_id", None) or engine.new_id("consumer"),
        producer_id=producer_id,
        rtp_capabilities=extra.pop("rtp_capabilities", DEVICE_CAPS),
        **extra,
    )


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="rtcp_interval must be positive"):
        EngineSettings(rtcp_interval=0)


@pytest.mark.parametrize(
    ("method", "data", "message"),
    [
        ("router.fly", {}, "unknown method 'router.fly'"),
        ("router.create", {}, "data.router_id: Field required"),
        ("router.create", {"router_id": 7}, "data.router_id: Input should be a valid string"),
        ("router.create", {"router_id": ""}, "data.router_id: .* at least 1 character"),
        (
            "transport.produce",
            {
                "transport_id": "t",
                "producer_id": "p",
                "kind": "audio",
                "rtp_parameters": {},
                "paused": "no",
            },
            "data.paused: .*valid boolean, got 'no'",
        ),
        (
            "transport.consume",
            {"transport_id": "t", "consumer_id": "c", "producer_id": "p", "rtp_capabilities": []},
            "data.rtp_capabilities: .*valid dictionary",
        ),
        ("router.dump", {"router_id": "nope"}, "router 'nope' not found"),
        ("transport.dump", {"transport_id": "nope"}, "transport 'nope' not found"),
        ("producer.pause", {"producer_id": "nope"}, "producer 'nope' not found"),
        ("consumer.resume", {"consumer_id": "nope"}, "consumer 'nope' not found"),
    ],
)
async def test_bad_requests_say_what_is_wrong(
    engine: Harness, method: str, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await engine.handler.handle(method, data)


async def test_router_create_returns_capabilities_and_rejects_reuse(engine: Harness) -> None:
    result = await engine.request(
        "router.create",
        router_id="r1",
        media_codecs=[
            {"kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2}
        ],
    )
    assert [c["mimeType"] for c in result["rtp_capabilities"]["codecs"]] == ["audio/opus"]

    with pytest.raises(ValueError, match="router id 'r1' is already in use"):
        await engine.request("router.create", router_id="r1")
    with pytest.raises(ValueError, match="media codec not supported"):
        await engine.request(
            "router.create",
            router_id="r2",
            media_codecs=[{"kind": "video", "mimeType": "video/AV2", "clockRate": 90000}],
        )
    assert (await engine.request("worker.dump"))["routers"] == ["r1"]


async def test_transport_request_validation(engine: Harness) -> None:
    router_id = await engine.router()
    with pytest.raises(ValueError, match="data.port_min: .*valid integer, got '40000'"):
        await engine.transport(router_id, port_min="40000")
    with pytest.raises(ValueError, match="listen_ip 'localhost' is not an IP address"):
        await engine.transport(router_id, listen_ip="localhost")
    with pytest.raises(ValueError, match="port range 50000..40000 is invalid"):
        await engine.transport(router_id, port_min=50000, port_max=40000)
    params = await engine.transport(router_id)
    with pytest.raises(ValueError, match="transport id .* is already in use"):
        await engine.request(
            "router.create_webrtc_transport", router_id=router_id, transport_id=params["id"],
            listen_ip="127.0.0.1", port_min=42000, port_max=42999,
        )  # fmt: skip


async def test_connect_validates_dtls_parameters_and_runs_once(engine: Harness) -> None:
    router_id = await engine.router()
    transport_id = (await engine.transport(router_id))["id"]
    fingerprint = {"algorithm": "sha-256", "value": ":".join(["AB"] * 32)}

    async def connect(dtls: Any) -> dict[str, Any]:
        return await engine.request(
            "transport.connect", transport_id=transport_id, dtls_parameters=dtls
        )

    with pytest.raises(ValueError, match="dtls_parameters.role must be one of"):
        await connect({"role": "boss", "fingerprints": [fingerprint]})
    with pytest.raises(ValueError, match="fingerprints must be a non-empty array"):
        await connect({"role": "client", "fingerprints": []})
    with pytest.raises(ValueError, match="no supported DTLS fingerprint algorithm"):
        await connect({"role": "client", "fingerprints": [{"algorithm": "md5", "value": "AB:CD"}]})
    assert await connect({"role": "client", "fingerprints": [fingerprint]}) == {
        "dtls_local_role": "server"
    }
    with pytest.raises(ValueError, match="connect\\(\\) was already called"):
        await connect({"role": "client", "fingerprints": [fingerprint]})


async def test_produce_validation(engine: Harness) -> None:
    router_id, transport_id, producer_id = await _producer(engine)

    async def produce(kind: str, params: dict[str, Any], producer: str | None = None) -> None:
        await engine.request(
            "transport.produce", transport_id=transport_id,
            producer_id=producer or engine.new_id("producer"), kind=kind, rtp_parameters=params,
        )  # fmt: skip

    with pytest.raises(ValueError, match="producer id .* is already in use"):
        await produce("audio", AUDIO, producer_id)
    with pytest.raises(ValueError, match="kind must be 'audio' or 'video'"):
        await produce("data", AUDIO)
    with pytest.raises(ValueError, match="does not match kind 'video'"):
        await produce("video", AUDIO)
    with pytest.raises(ValueError, match=f"SSRC {VIDEO['encodings'][0]['ssrc']} is already used"):
        await produce("video", VIDEO | {"mid": "9"})
    with pytest.raises(ValueError, match="mid '1' is already used"):
        duplicate = copy.deepcopy(VIDEO)
        duplicate["encodings"][0]["ssrc"] += 1
        duplicate["encodings"][0]["rtx"]["ssrc"] += 1
        await produce("video", duplicate)
    unsupported = copy.deepcopy(AUDIO)
    unsupported["codecs"][0]["mimeType"] = "audio/G722"
    with pytest.raises(ValueError, match="unsupported codec"):
        await produce("audio", unsupported)


async def test_consume_assigns_sequential_mids_and_fresh_ssrcs(engine: Harness) -> None:
    router_id, _, producer_id = await _producer(engine)
    transport_id = (await engine.transport(router_id))["id"]

    first = await _consume(engine, router_id, producer_id, transport_id=transport_id)
    second = await _consume(engine, router_id, producer_id, transport_id=transport_id, paused=True)

    assert [first["rtp_parameters"]["mid"], second["rtp_parameters"]["mid"]] == ["0", "1"]
    ssrcs = {c["rtp_parameters"]["encodings"][0]["ssrc"] for c in (first, second)}
    assert len(ssrcs) == 2 and VIDEO["encodings"][0]["ssrc"] not in ssrcs
    assert first["producer_paused"] is False and first["type"] == "simple"
    codecs = [c["mimeType"] for c in first["rtp_parameters"]["codecs"]]
    assert codecs == ["video/VP8", "video/rtx"]
    assert first["rtp_parameters"]["rtcp"]["cname"] == VIDEO["rtcp"]["cname"]


async def test_can_consume_and_incompatible_consumers(engine: Harness) -> None:
    router_id, _, producer_id = await _producer(engine)
    h264_only = copy.deepcopy(DEVICE_CAPS)
    h264_only["codecs"] = [c for c in h264_only["codecs"] if c["mimeType"] != "video/VP8"]

    ok = await engine.request(
        "router.can_consume", router_id=router_id, producer_id=producer_id,
        rtp_capabilities=DEVICE_CAPS,
    )  # fmt: skip
    not_ok = await engine.request(
        "router.can_consume", router_id=router_id, producer_id=producer_id,
        rtp_capabilities=h264_only,
    )  # fmt: skip

    assert ok == {"can_consume": True} and not_ok == {"can_consume": False}
    with pytest.raises(ValueError, match="cannot consume producer"):
        await _consume(engine, router_id, producer_id, rtp_capabilities=h264_only)
    other_router = await engine.router()
    with pytest.raises(ValueError, match="not found in router"):
        await _consume(engine, other_router, producer_id)


async def test_dumps_and_stats_describe_the_objects(engine: Harness) -> None:
    router_id, transport_id, producer_id = await _producer(engine)
    consumer = await _consume(engine, router_id, producer_id)
    consumer_id = next(iter(engine.handler.objects.consumers))

    router = await engine.request("router.dump", router_id=router_id)
    producer = await engine.request("producer.dump", producer_id=producer_id)
    transport = await engine.request("transport.dump", transport_id=transport_id)
    consumer_dump = await engine.request("consumer.dump", consumer_id=consumer_id)
    worker = await engine.request("worker.dump")

    assert router["mapProducerIdConsumerIds"] == {producer_id: [consumer_id]}
    assert producer["rtpMapping"]["encodings"][0]["ssrc"] == VIDEO["encodings"][0]["ssrc"]
    # Chrome's extension ids map to the Router's.
    router_ids = {
        ext["uri"]: ext["preferredId"]
        for ext in SUPPORTED_RTP_CAPABILITIES["headerExtensions"]
        if ext["kind"] == "video"
    }
    expected = {str(ext["id"]): router_ids[ext["uri"]] for ext in VIDEO["headerExtensions"]}
    assert producer["headerExtensionIdMapping"] == expected
    assert transport["producerIds"] == [producer_id]
    assert transport["iceState"] == "new" and transport["dtlsState"] == "new"
    assert consumer_dump["rtpParameters"] == consumer["rtp_parameters"]
    assert worker["transports"] == 2 and len(worker["ports"]) == 2
    stats = await engine.request("transport.get_stats", transport_id=transport_id)
    assert stats["packetsReceived"] == 0 and stats["droppedPackets"] == 0


async def test_pause_and_resume_requests(engine: Harness) -> None:
    router_id, _, producer_id = await _producer(engine)
    await _consume(engine, router_id, producer_id)
    consumer_id = next(iter(engine.handler.objects.consumers))

    await engine.request("producer.pause", producer_id=producer_id)
    await engine.request("producer.pause", producer_id=producer_id)  # idempotent
    await engine.request("consumer.pause", consumer_id=consumer_id)
    assert (await engine.request("producer.dump", producer_id=producer_id))["paused"] is True
    assert engine.events_of("consumer.producerpause", consumer_id) == [{}]

    await engine.request("producer.resume", producer_id=producer_id)
    await engine.request("consumer.resume", consumer_id=consumer_id)
    dump = await engine.request("consumer.dump", consumer_id=consumer_id)
    assert dump["paused"] is False and dump["producerPaused"] is False


async def test_router_close_releases_everything(engine: Harness) -> None:
    router_id, transport_id, producer_id = await _producer(engine)
    await _consume(engine, router_id, producer_id)
    consumer_id = next(iter(engine.handler.objects.consumers))
    ports = (await engine.request("worker.dump"))["ports"]

    await engine.request("router.close", router_id=router_id)

    assert engine.events_of("producer.close", producer_id) == [{}]
    assert engine.events_of("consumer.producerclose", consumer_id) == [{}]
    worker = await engine.request("worker.dump")
    assert worker == worker | {"routers": [], "transports": 0, "producers": 0, "consumers": 0}
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", port))
        sock.close()
    with pytest.raises(ValueError, match="not found"):
        await engine.request("transport.dump", transport_id=transport_id)


async def test_restart_ice_gives_new_credentials(engine: Harness) -> None:
    router_id = await engine.router()
    params = await engine.transport(router_id)

    result = await engine.request("transport.restart_ice", transport_id=params["id"])

    assert (
        result["ice_parameters"]["usernameFragment"] != params["ice_parameters"]["usernameFragment"]
    )
    assert result["ice_parameters"]["iceLite"] is True


async def test_handler_close_closes_every_router() -> None:
    events: list[tuple[str, str, dict[str, Any]]] = []
    handler = WorkerHandler(emit=lambda *e: events.append(e))
    await handler.handle("router.create", {"router_id": "r"})
    params = await handler.handle(
        "router.create_webrtc_transport",
        {"router_id": "r", "transport_id": "t", "listen_ip": "127.0.0.1",
         "port_min": 42000, "port_max": 42999},
    )  # fmt: skip

    await handler.close()

    assert (await handler.handle("worker.dump", {}))["routers"] == []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", params["ice_candidates"][0]["port"]))
    sock.close()


async def test_a_failing_emitter_does_not_break_requests() -> None:
    def explode(event: str, target: str, data: dict[str, Any]) -> None:
        raise RuntimeError("channel gone")

    handler = WorkerHandler(emit=explode)
    await handler.handle("router.create", {"router_id": "r"})
    await handler.handle("router.close", {"router_id": "r"})
    await handler.close()
