"""Who is speaking: engine/audio_level.py on its own (time passed in), then through a
worker handler with RTP packets carrying the ssrc-audio-level extension (RFC 6464)."""

from __future__ import annotations

import pytest

from roomler.sfu.engine.audio_level import AudioLevels, Volume, level_of
from roomler.sfu.rtp import RtpPacket
from tests.sfu.engine.test_producer_consumer import (
    AUDIO,
    AUDIO_SSRC,
    CHROME_AUDIO_IDS,
    engine,  # noqa: F401  (fixture)
    start_call,
)
from tests.sfu.engine_client import Harness, wait_for

LOUD, SOFT, QUIET = 20, 40, 110  # -dBov


def interval(levels: AudioLevels, **per_producer: int) -> None:
    """Ten packets of each producer at its level, as one interval's worth."""
    for _ in range(10):
        for producer_id, level in per_producer.items():
            levels.add_level(producer_id, level)


def observed(*producer_ids: str, **options: float) -> AudioLevels:
    levels = AudioLevels(**options)  # type: ignore[arg-type]
    for producer_id in producer_ids:
        levels.add_producer(producer_id)
    return levels


def test_level_of_reads_the_seven_bit_level_and_ignores_the_voice_bit() -> None:
    assert level_of(b"\x94") == 20  # V=1, level 20
    assert level_of(b"\x14") == 20
    assert level_of(b"") is None


def test_volumes_are_the_loud_producers_loudest_first_then_one_silence() -> None:
    levels = observed("a", "b", "c", threshold=-70)
    interval(levels, a=SOFT, b=LOUD, c=QUIET)
    report = levels.report()
    assert report.volumes == [Volume("b", -20.0), Volume("a", -40.0)]
    assert not report.silence

    interval(levels, a=QUIET, b=QUIET)
    assert levels.report().silence
    interval(levels, a=QUIET)
    again = levels.report()
    assert again.volumes == [] and not again.silence  # silence is told once
    assert not levels.report().silence  # nothing at all: still silent


def test_the_first_speaker_is_dominant_at_once() -> None:
    levels = observed("a", "b")
    interval(levels, a=LOUD, b=QUIET)
    assert levels.report().dominant == "a"
    interval(levels, a=LOUD)
    assert levels.report().dominant is None  # no change, nothing to tell


def test_another_speaker_takes_over_only_after_the_switch_intervals() -> None:
    levels = observed("a", "b", switch_intervals=3)
    interval(levels, a=LOUD)
    assert levels.report().dominant == "a"
    # B is louder for two intervals, A speaks again: a crosstalk, no switch.
    for _ in range(2):
        interval(levels, a=SOFT, b=LOUD)
        assert levels.report().dominant is None
    interval(levels, a=LOUD, b=SOFT)
    assert levels.report().dominant is None
    # Three intervals in a row make B dominant.
    reports = []
    for _ in range(3):
        interval(levels, a=SOFT, b=LOUD)
        reports.append(levels.report().dominant)
    assert reports == [None, None, "b"]
    assert levels.dominant == "b"


def test_a_speaker_barely_louder_than_the_dominant_does_not_take_over() -> None:
    levels = observed("a", "b", switch_intervals=1, switch_margin=3.0)
    interval(levels, a=LOUD)
    levels.report()
    for _ in range(5):
        interval(levels, a=LOUD + 1, b=LOUD)  # B 1 dB louder: within the margin
        assert levels.report().dominant is None
    assert levels.dominant == "a"


def test_silence_keeps_the_dominant_and_a_closed_one_hands_over_at_once() -> None:
    levels = observed("a", "b")
    interval(levels, a=LOUD)
    levels.report()
    for _ in range(5):
        interval(levels, a=QUIET, b=QUIET)
        assert levels.report().dominant is None
    assert levels.dominant == "a"
    levels.remove_producer("a")
    interval(levels, a=LOUD, b=SOFT)  # a is no longer observed
    report = levels.report()
    assert report.volumes == [Volume("b", -40.0)]
    assert report.dominant == "b"


def test_levels_of_unobserved_producers_are_ignored() -> None:
    levels = observed("a")
    interval(levels, z=LOUD)
    assert levels.report().volumes == []


async def test_the_router_names_the_dominant_speaker_from_rtp_packets(
    engine: Harness,  # noqa: F811
) -> None:
    call = await start_call(engine, AUDIO, kind="audio")
    with pytest.raises(ValueError):
        await engine.request(
            "router.enable_audio_levels",
            router_id=call.router_id,
            interval_ms=5,
            threshold=-70,
            switch_intervals=2,
        )
    await engine.request(
        "router.enable_audio_levels",
        router_id=call.router_id,
        interval_ms=50,
        threshold=-70,
        switch_intervals=2,
    )
    ids = CHROME_AUDIO_IDS
    for sequence in range(20):
        call.sender.send_rtp(
            RtpPacket(
                payload_type=111,
                sequence_number=100 + sequence,
                timestamp=960 * sequence,
                ssrc=AUDIO_SSRC,
                extensions={ids["mid"]: b"0", ids["level"]: bytes([0x80 | LOUD])},
                payload=b"opus" * 10,
            )
        )
    await wait_for(lambda: engine.events_of("router.dominantspeaker", call.router_id) != [])
    assert engine.events_of("router.dominantspeaker", call.router_id)[0] == {
        "producer_id": call.producer_id
    }
    volumes = engine.events_of("router.audiolevels", call.router_id)[0]["volumes"]
    assert volumes == [{"producer_id": call.producer_id, "volume": -20.0}]
    # The packets stop: one silence.
    await wait_for(lambda: engine.events_of("router.silence", call.router_id) != [])
