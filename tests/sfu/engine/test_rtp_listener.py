"""RtpListener on its own: SSRC / MID / RID / repaired-RID lookups and the RTCP lookups."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from roomler.sfu.engine.rtp_listener import RtpListener
from tests.sfu.engine.standalone import (
    MID,
    RID,
    RRID,
    SIMULCAST,
    VIDEO,
    make_consumer,
    make_producer,
)


def without_mid(params: dict[str, Any]) -> dict[str, Any]:
    params = copy.deepcopy(params)
    del params["mid"]
    return params


def test_signalled_ssrcs_are_found_media_and_rtx(loop: asyncio.AbstractEventLoop) -> None:
    listener = RtpListener()
    producer = make_producer(loop, VIDEO)
    listener.add_producer(producer)
    media, rtx = VIDEO["encodings"][0]["ssrc"], VIDEO["encodings"][0]["rtx"]["ssrc"]
    assert listener.get_producer(media, {}) == (producer, producer.streams[0], False)
    assert listener.get_producer(rtx, {}) == (producer, producer.streams[0], True)
    assert listener.get_producer(999, {}) is None
    assert listener.media_stream(media) == (producer, producer.streams[0])
    assert listener.media_stream(rtx) is None  # no Sender Report is about an RTX stream


def test_an_unsignalled_ssrc_is_learned_by_mid_and_rid(loop: asyncio.AbstractEventLoop) -> None:
    listener = RtpListener()
    producer = make_producer(loop, SIMULCAST)
    listener.add_producer(producer)
    r1 = listener.get_producer(2222, {MID: b"2", RID: b"r1"})
    assert r1 == (producer, producer.streams[1], False)
    # Learned: the next packet needs no extension.
    assert listener.get_producer(2222, {}) == r1
    assert producer.streams[1].ssrc == 2222
    assert listener.dump()["ssrcTable"] == {"2222": "p"}


def test_repaired_rid_binds_the_rtx_stream_of_that_encoding(
    loop: asyncio.AbstractEventLoop,
) -> None:
    listener = RtpListener()
    producer = make_producer(loop, SIMULCAST)
    listener.add_producer(producer)
    binding = listener.get_producer(3333, {MID: b"2", RRID: b"r2"})
    assert binding == (producer, producer.streams[2], True)
    assert producer.streams[2].rtx_ssrc == 3333


def test_a_packet_is_matched_by_its_mid_only(loop: asyncio.AbstractEventLoop) -> None:
    listener = RtpListener()
    with_mid = make_producer(loop, SIMULCAST, "with-mid")
    listener.add_producer(with_mid)
    # An unknown MID, or a RID the MID's producer does not have, binds nothing.
    assert listener.get_producer(4444, {MID: b"9", RID: b"r0"}) is None
    assert listener.get_producer(4444, {MID: b"2", RID: b"r7"}) is None
    assert listener.ssrc_table == {}


def test_two_simulcast_producers_with_the_same_rids_are_told_apart_by_mid(
    loop: asyncio.AbstractEventLoop,
) -> None:
    listener = RtpListener()
    camera = make_producer(loop, SIMULCAST, "camera")
    screen_params = copy.deepcopy(SIMULCAST)
    screen_params["mid"] = "3"
    screen = make_producer(loop, screen_params, "screen")
    listener.add_producer(camera)
    listener.add_producer(screen)
    assert listener.rid_table == {}
    assert listener.get_producer(10, {MID: b"2", RID: b"r0"}) == (camera, camera.streams[0], False)
    assert listener.get_producer(20, {MID: b"3", RID: b"r0"}) == (screen, screen.streams[0], False)


def test_without_a_mid_the_rid_alone_finds_the_producer(loop: asyncio.AbstractEventLoop) -> None:
    listener = RtpListener()
    producer = make_producer(loop, without_mid(SIMULCAST))
    listener.add_producer(producer)
    assert set(listener.rid_table) == {"r0", "r1", "r2"}
    assert listener.get_producer(10, {RID: b"r1"}) == (producer, producer.streams[1], False)
    assert listener.get_producer(11, {RRID: b"r1"}) == (producer, producer.streams[1], True)
    assert listener.get_producer(12, {RID: b"r9"}) is None
    # A second producer without a mid may not reuse those RIDs.
    with pytest.raises(ValueError, match="rid 'r0' is already used"):
        listener.add_producer(make_producer(loop, without_mid(SIMULCAST), "other"))


def test_clashes_are_refused_and_change_nothing(loop: asyncio.AbstractEventLoop) -> None:
    listener = RtpListener()
    listener.add_producer(make_producer(loop, VIDEO, "first"))
    before = listener.dump()
    same_ssrc = copy.deepcopy(VIDEO)
    same_ssrc["mid"] = "7"
    with pytest.raises(ValueError, match=r"SSRC \d+ is already used"):
        listener.add_producer(make_producer(loop, same_ssrc, "second"))
    same_mid = copy.deepcopy(SIMULCAST)
    same_mid["mid"] = VIDEO["mid"]
    with pytest.raises(ValueError, match="mid '1' is already used"):
        listener.add_producer(make_producer(loop, same_mid, "third"))
    assert listener.dump() == before


def test_a_producer_that_cannot_be_matched_is_refused(loop: asyncio.AbstractEventLoop) -> None:
    # RIDs and a mid, but the browser never sends the MID header extension.
    params = copy.deepcopy(SIMULCAST)
    params["headerExtensions"] = [
        ext
        for ext in params["headerExtensions"]
        if ext["uri"] != "urn:ietf:params:rtp-hdrext:sdes:mid"
    ]
    with pytest.raises(ValueError, match="rtpParameters need encodings"):
        RtpListener().add_producer(make_producer(loop, params))


def test_removing_a_producer_empties_its_entries(loop: asyncio.AbstractEventLoop) -> None:
    listener = RtpListener()
    keep = make_producer(loop, VIDEO, "keep")
    gone = make_producer(loop, without_mid(SIMULCAST), "gone")
    listener.add_producer(keep)
    listener.add_producer(gone)
    listener.get_producer(10, {RID: b"r0"})
    listener.remove_producer(gone)
    assert {binding[0] for binding in listener.ssrc_table.values()} == {keep}
    assert listener.rid_table == {} and listener.mid_table == {"1": keep}
    assert listener.get_producer(10, {RID: b"r0"}) is None


def test_consumers_are_found_by_the_ssrc_we_send_with(loop: asyncio.AbstractEventLoop) -> None:
    listener = RtpListener()
    producer = make_producer(loop, VIDEO)
    first, second = make_consumer(loop, producer, "0"), make_consumer(loop, producer, "1")
    listener.add_consumer(first)
    listener.add_consumer(second)
    assert listener.consumer(first.ssrc) is first
    assert listener.consumer(second.ssrc) is second
    with pytest.raises(ValueError, match="collides"):
        listener.add_consumer(first)
    listener.remove_consumer(first)
    assert listener.consumer(first.ssrc) is None
    assert listener.consumer(second.ssrc) is second
