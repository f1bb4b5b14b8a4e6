"""RtcpScheduler on its own: the feedback period, the randomized reports, what goes in them."""

from __future__ import annotations

import asyncio
import copy
import random

from roomler.sfu.codecs import TRANSPORT_CC_URI
from roomler.sfu.engine.producer import Producer
from roomler.sfu.engine.rtcp_scheduler import RtcpScheduler, pack_compound
from roomler.sfu.engine.settings import EngineSettings
from roomler.sfu.rtcp import (
    GenericNack,
    ReceiverReport,
    Remb,
    Sdes,
    TransportFeedback,
    parse_rtcp,
)
from roomler.sfu.rtp import RtpPacket, read_header
from tests.sfu.engine.standalone import VIDEO, make_producer

SETTINGS = EngineSettings(rtcp_interval=1.0, feedback_interval=0.05)
SSRC = VIDEO["encodings"][0]["ssrc"]


def scheduler(seed: int = 1) -> RtcpScheduler:
    return RtcpScheduler(SETTINGS, 42, "cname", epoch=0.0, rng=random.Random(seed))


def receive(producer: Producer, seq: int, now: float) -> None:
    data = RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq * 3000, ssrc=SSRC)
    raw = data.serialize()
    producer.receive_rtp(raw, read_header(raw), {}, producer.streams[0], False, now)


def packets(datagrams: list[bytes]) -> list[object]:
    return [packet for datagram in datagrams for packet in parse_rtcp(datagram)]


def test_feedback_every_period_with_producers_else_sleep_until_the_report() -> None:
    rtcp = scheduler()
    rtcp.start(10.0)
    assert rtcp.next_report == 10.5  # half an interval after connecting
    assert rtcp.next_delay(10.0, has_producers=True) == SETTINGS.feedback_interval
    assert rtcp.next_delay(10.0, has_producers=False) == 0.5
    assert rtcp.next_delay(10.49, has_producers=False) == SETTINGS.feedback_interval


def test_reports_come_at_randomized_intervals(loop: asyncio.AbstractEventLoop) -> None:
    rtcp = scheduler()
    producer = make_producer(loop, VIDEO)
    receive(producer, 1, 0.0)
    rtcp.start(0.0)
    intervals = []
    now, last = 0.0, None
    while len(intervals) < 20:
        now += SETTINGS.feedback_interval
        _, reported = rtcp.on_tick(now, [producer], [], transport_cc=False)
        if reported:
            if last is not None:
                intervals.append(now - last)
            last = now
    # RFC 3550 section 6.2: 0.5..1.5 times the interval (to a tick), not always the same.
    assert all(0.5 - 0.051 <= interval <= 1.5 + 0.051 for interval in intervals)
    assert len({round(interval, 2) for interval in intervals}) > 3


def test_a_report_tick_sends_receiver_reports_with_a_cname(
    loop: asyncio.AbstractEventLoop,
) -> None:
    rtcp = scheduler()
    producer = make_producer(loop, VIDEO)
    for seq in (1, 2, 4):  # 3 is lost
        receive(producer, seq, 0.01 * seq)
    rtcp.start(0.0)
    datagrams, reported = rtcp.on_tick(0.2, [producer], [], transport_cc=False)
    assert not reported and not any(isinstance(p, ReceiverReport) for p in packets(datagrams))
    datagrams, reported = rtcp.on_tick(0.5, [producer], [], transport_cc=False)
    assert reported
    report, sdes = [p for p in packets(datagrams) if isinstance(p, ReceiverReport | Sdes)]
    assert isinstance(report, ReceiverReport) and report.ssrc == 42
    assert [(b.ssrc, b.packets_lost, b.highest_sequence) for b in report.reports] == [(SSRC, 1, 4)]
    assert isinstance(sdes, Sdes) and sdes.chunks[0].items == [(1, b"cname")]


def test_feedback_carries_transport_cc_and_due_nacks(loop: asyncio.AbstractEventLoop) -> None:
    rtcp = scheduler()
    producer = make_producer(loop, VIDEO)
    receive(producer, 1, 0.0)
    receive(producer, 3, 0.01)  # 2 is missing: NACKed once due
    for seq in (100, 101, 103):
        rtcp.transport_cc.add(seq, 0.01 * (seq - 99))
    datagrams, _ = rtcp.on_tick(0.2, [producer], [], transport_cc=True)
    sent = packets(datagrams)
    feedback = [p for p in sent if isinstance(p, TransportFeedback)]
    assert len(feedback) == 1 and feedback[0].media_ssrc == SSRC
    assert [seq for seq, at in feedback[0].arrivals() if at is not None] == [100, 101, 103]
    assert rtcp.transport_cc_feedback_sent == 1
    nacks = [p for p in sent if isinstance(p, GenericNack)]
    assert [(n.media_ssrc, n.lost) for n in nacks] == [(SSRC, [2])]
    # Without transport-cc negotiated, no transport-cc feedback.
    rtcp.transport_cc.add(104, 0.3)
    assert not any(
        isinstance(p, TransportFeedback)
        for p in packets(rtcp.on_tick(0.3, [producer], [], transport_cc=False)[0])
    )


def test_remb_goes_with_the_report_when_transport_cc_is_not_negotiated(
    loop: asyncio.AbstractEventLoop,
) -> None:
    params = copy.deepcopy(VIDEO)
    params["headerExtensions"] = [
        ext for ext in params["headerExtensions"] if ext["uri"] != TRANSPORT_CC_URI
    ]
    producer = make_producer(loop, params)
    assert producer.remb_enabled and not producer.transport_cc_enabled
    rtcp = scheduler()
    receive(producer, 1, 0.0)
    rtcp.start(0.0)
    datagrams, reported = rtcp.on_tick(0.5, [producer], [], transport_cc=False)
    remb = [p for p in packets(datagrams) if isinstance(p, Remb)]
    assert reported and len(remb) == 1 and remb[0].ssrcs == [SSRC]
    assert remb[0].bitrate >= 500_000  # the estimator's floor


def test_groups_are_packed_up_to_the_mtu_without_splitting_one() -> None:
    group = [ReceiverReport(1), Sdes()]
    one = len(pack_compound([group])[0])
    datagrams = pack_compound([group] * 5, mtu=one * 2)
    assert [len(d) for d in datagrams] == [one * 2, one * 2, one]
    assert pack_compound([]) == []
