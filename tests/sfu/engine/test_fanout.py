"""Fan-out per encoding: a producer hands each packet only to the consumers of its encoding.

Sans-I/O, with the engine's own Producer and SimulcastConsumer (standalone.py):
what each consumer is handed follows what it subscribed to, a simulcast
consumer subscribes to the encoding it sends and to the keyframes of the one
it waits to switch to, and layer activity is told to listeners when it changes.
"""

from __future__ import annotations

import asyncio

from roomler.sfu.engine.producer import ACTIVE_WINDOW, LayerActivity, Producer
from roomler.sfu.engine.rewrite import RtpForward
from roomler.sfu.engine.simulcast_consumer import SimulcastConsumer
from roomler.sfu.rtp import RtpPacket, read_header
from tests.sfu.engine.standalone import SIMULCAST, make_consumer, make_producer


class Sink:
    """A consumer as the producer sees it, recording (encoding, keyframe) of each packet."""

    def __init__(self, sink_id: str, streams: tuple[int, ...], keyframes: tuple[int, ...] = ()):
        self.id = sink_id
        self.streams, self.keyframes = streams, keyframes
        self.got: list[tuple[int, bool]] = []

    def producer_streams(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return self.streams, self.keyframes

    def forward(self, packet: RtpForward, now: float) -> None:
        self.got.append((packet.layer, packet.keyframe))


class Camera:
    """VP8 packets of each of the producer's three encodings, bound to SSRCs 1, 2, 3."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        for stream in producer.streams:
            stream.bind(stream.index + 1, rtx=False)
        self.seq = [0, 0, 0]

    def send(self, layer: int, now: float, *, keyframe: bool = False) -> None:
        # X, S; I (15-bit PictureID), L, T; the payload header's P bit 0 on a keyframe.
        descriptor = bytes((0x90, 0xE0, 0x80, self.seq[layer] & 0xFF, 0, 0, 0 if keyframe else 1))
        data = RtpPacket(
            payload_type=96,
            sequence_number=self.seq[layer],
            timestamp=3000 * self.seq[layer],
            ssrc=layer + 1,
            marker=True,
            payload=descriptor + bytes(40),
        ).serialize()
        self.seq[layer] += 1
        stream = self.producer.streams[layer]
        self.producer.receive_rtp(data, read_header(data), {}, stream, False, now)


def test_each_encoding_goes_to_its_subscribers_only(loop: asyncio.AbstractEventLoop) -> None:
    producer = make_producer(loop, SIMULCAST)
    camera = Camera(producer)
    low, top, waiting = Sink("low", (0,)), Sink("top", (2,)), Sink("waiting", (), (1,))
    for sink in (low, top, waiting):
        producer.add_consumer(sink)  # type: ignore[arg-type]
    for layer in range(3):
        camera.send(layer, 1.0)
        camera.send(layer, 1.1, keyframe=True)
    assert low.got == [(0, False), (0, True)]
    assert top.got == [(2, False), (2, True)]
    assert waiting.got == [(1, True)]  # keyframes only

    producer.subscribe(low, (1,))  # type: ignore[arg-type]
    producer.remove_consumer(top)  # type: ignore[arg-type]
    for layer in range(3):
        camera.send(layer, 1.2)
    assert low.got[2:] == [(1, False)]
    assert top.got[2:] == []
    assert waiting.got[1:] == []


def test_listeners_hear_when_the_active_layers_change() -> None:
    activity = LayerActivity(3)
    heard: list[float] = []
    activity.listeners["c"] = heard.append
    activity.seen(0, 10.0)
    assert heard == [10.0]  # layer 0 starts: told at once
    activity.seen(0, 10.1)
    activity.seen(1, 10.2)
    assert heard == [10.0, 10.2]
    activity.seen(0, 10.3)
    activity.seen(0, 10.2 + ACTIVE_WINDOW + 0.1)  # layer 1 went quiet
    assert heard[-1] == 10.2 + ACTIVE_WINDOW + 0.1
    assert activity.active(heard[-1]) == [0]
    count = len(heard)
    for step in range(20):
        activity.seen(0, heard[-1] + step * 0.05)
    assert len(heard) == count  # nothing changed, nobody told


def _handed(producer: Producer, consumer: SimulcastConsumer) -> tuple[list[int], list[int]]:
    every = [s.index for s in producer.streams if consumer.id in s.sinks]
    keyframes = [s.index for s in producer.streams if consumer.id in s.key_sinks]
    return every, keyframes


def test_a_simulcast_consumer_takes_the_encoding_it_sends_and_keyframes_of_its_target(
    loop: asyncio.AbstractEventLoop,
) -> None:
    producer = make_producer(loop, SIMULCAST)
    camera = Camera(producer)
    consumer = make_consumer(loop, producer, "1", SimulcastConsumer)
    assert isinstance(consumer, SimulcastConsumer)
    producer.add_consumer(consumer)
    now = loop.time()
    for layer in range(3):
        camera.send(layer, now)
    # All three flow: it waits for a keyframe of the top encoding, and sees nothing else.
    assert _handed(producer, consumer) == ([], [2])
    camera.send(2, now, keyframe=True)
    assert consumer.layers()["currentLayers"] == {"spatialLayer": 2, "temporalLayer": 0}
    assert _handed(producer, consumer) == ([2], [])
    sent = consumer.packets_sent
    for layer in range(3):
        camera.send(layer, now + 0.03)
    assert consumer.packets_sent == sent + 1

    consumer.set_preferred_layers(0)  # down: sends 2 until 0's keyframe
    assert _handed(producer, consumer) == ([2], [0])
    camera.send(0, now + 0.06, keyframe=True)
    assert _handed(producer, consumer) == ([0], [])

    consumer.set_preferred_layers(2)
    assert _handed(producer, consumer) == ([0], [2])
    camera.send(2, now + 0.09, keyframe=True)
    assert _handed(producer, consumer) == ([2], [])

    # Encoding 2 goes quiet: the producer tells the consumer, which waits for encoding 1.
    later = now + 0.09 + ACTIVE_WINDOW + 0.1
    camera.send(0, later)
    camera.send(1, later)
    assert _handed(producer, consumer) == ([2], [1])
    consumer.close()
    assert _handed(producer, consumer) == ([], [])
