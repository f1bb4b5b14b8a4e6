"""The send-side estimator and the allocator, replayed on a simulated bottleneck.

The simulation: the SFU sends one receiver an audio stream (40 kbps) and a
three-layer simulcast video, at whatever layers the allocator picks, through
a bottleneck link (capacity, a drop-tail queue of 300 ms, 20 ms one way,
optional random loss and jitter).  The receiver sends transport-wide cc
feedback every 50 ms, built with :class:`roomler.sfu.rtcp.TransportFeedbackBuilder`
and serialized/parsed as on the wire.  Padding probes go out when the
allocator asks for them.  The issue's targets are asserted on the layers the
video consumer gets over time.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field

import pytest

from roomler.sfu.engine.allocation import (
    KEEP_MARGIN,
    PROBE_MARGIN,
    UPGRADE_HOLD,
    BitrateAllocator,
    Demand,
    Priority,
)
from roomler.sfu.engine.bandwidth import TransportBandwidth
from roomler.sfu.engine.gcc import BandwidthUsage, GccEstimator, Prober, SendHistory
from roomler.sfu.rtcp import TransportFeedback, TransportFeedbackBuilder, parse_rtcp

AUDIO = 40_000.0
VIDEO_LAYERS = {(0, 0): 150_000.0, (1, 0): 500_000.0, (2, 0): 1_500_000.0}
TICK = 0.005
FEEDBACK_INTERVAL = 0.05
PACKET = 1200


@dataclass
class Link:
    capacity: float
    rng: random.Random
    delay: float = 0.02
    queue_limit: float = 0.3
    loss: float = 0.0
    jitter: float = 0.0
    #: Bytes a token bucket lets through at once (an htb class's burst).
    burst: int = 0
    #: A queue that counts packets (a pfifo's limit), beside the queue_limit in time.
    queue_packets: int | None = None
    free_at: float = 0.0
    last_arrival: float = 0.0
    queued: deque[float] = field(default_factory=deque)

    def send(self, size: int, now: float) -> float | None:
        if self.loss and self.rng.random() < self.loss:
            return None
        start = max(now, self.free_at - self.burst * 8 / self.capacity)
        if start - now > self.queue_limit:
            return None  # the queue is full: tail drop
        while self.queued and self.queued[0] <= now:
            self.queued.popleft()
        if self.queue_packets is not None and len(self.queued) >= self.queue_packets:
            return None
        if start > now:
            self.queued.append(start)
        self.free_at = max(self.free_at, now) + size * 8 / self.capacity
        arrival = start + size * 8 / self.capacity + self.delay + self.rng.random() * self.jitter
        # Jitter without reordering (the receiver's feedback would call it loss).
        self.last_arrival = max(self.last_arrival, arrival)
        return self.last_arrival


@dataclass
class Simulation:
    link: Link
    estimator: GccEstimator = field(default_factory=GccEstimator)
    allocator: BitrateAllocator = field(default_factory=BitrateAllocator)
    prober: Prober = field(default_factory=Prober)
    now: float = 0.0
    seq: int = 0
    credit: float = 0.0
    layers: tuple[int, int] | None = None
    allocated: float = AUDIO
    probe_bitrate: float | None = None
    #: (time, video layers) after each allocation
    timeline: list[tuple[float, tuple[int, int] | None]] = field(default_factory=list)
    estimates: list[tuple[float, float]] = field(default_factory=list)
    probes_measured: list[float] = field(default_factory=list)
    in_flight: deque[tuple[float, int]] = field(default_factory=deque)
    feedback_queue: deque[tuple[float, bytes]] = field(default_factory=deque)
    next_feedback: float = FEEDBACK_INTERVAL

    def __post_init__(self) -> None:
        self.builder = TransportFeedbackBuilder(sender_ssrc=1, media_ssrc=2)

    def demands(self) -> list[Demand]:
        return [
            Demand("audio", Priority.AUDIO, {(0, 0): AUDIO}),
            Demand("video", Priority.VIDEO, dict(VIDEO_LAYERS)),
        ]

    def media_rate(self) -> float:
        video = VIDEO_LAYERS[self.layers] if self.layers is not None else 0.0
        return AUDIO + video

    def send(self, size: int, probe_cluster: int | None = None) -> None:
        seq = self.seq & 0xFFFF
        self.seq += 1
        self.estimator.on_packet_sent(seq, size, self.now, probe_cluster)
        arrival = self.link.send(size, self.now)
        if arrival is not None:
            self.in_flight.append((arrival, seq))

    def step(self) -> None:
        if self.probe_bitrate is not None and self.estimator.probe_allowed(self.now):
            self.prober.start(self.probe_bitrate, self.now, self.media_rate())
        cluster = self.prober.cluster if self.prober.active else None
        self.credit += self.media_rate() * TICK / 8
        while self.credit >= PACKET:
            self.credit -= PACKET
            self.send(PACKET, cluster)
        for size in self.prober.due(self.now):
            self.send(size, cluster)
        while self.in_flight and self.in_flight[0][0] <= self.now:
            arrival, seq = self.in_flight.popleft()
            self.builder.add(seq, int(arrival * 1_000_000))
        if self.now >= self.next_feedback:
            self.next_feedback += FEEDBACK_INTERVAL
            for feedback in self.builder.build():
                self.feedback_queue.append((self.now + self.link.delay, feedback.serialize()))
        while self.feedback_queue and self.feedback_queue[0][0] <= self.now:
            _, data = self.feedback_queue.popleft()
            [feedback] = parse_rtcp(data)
            assert isinstance(feedback, TransportFeedback)
            self.estimator.on_transport_feedback(feedback, self.now)
            measured = self.estimator.probe_results.pop(self.prober.cluster, None)
            if measured is not None:
                self.prober.on_result(measured)
                self.probes_measured.append(measured)
            self.reallocate()
        self.now += TICK

    def reallocate(self) -> None:
        allocation = self.allocator.allocate(
            self.estimator.target_bitrate, self.demands(), self.now
        )
        self.layers = allocation.layers["video"]
        self.probe_bitrate = allocation.probe_bitrate
        self.timeline.append((self.now, self.layers))
        self.estimates.append((self.now, self.estimator.target_bitrate))

    def run_until(self, end: float) -> None:
        while self.now < end:
            self.step()

    def layers_between(self, start: float, end: float) -> list[tuple[int, int] | None]:
        return [layers for t, layers in self.timeline if start <= t < end]

    def changes_between(self, start: float, end: float) -> int:
        seen = self.layers_between(start, end)
        return sum(1 for a, b in zip(seen, seen[1:], strict=False) if a != b)

    def first_time(self, start: float, predicate: object) -> float | None:
        for t, layers in self.timeline:
            if t >= start and predicate(layers):  # type: ignore[operator]
                return t
        return None


def cost(layers: tuple[int, int] | None) -> float:
    return AUDIO + (VIDEO_LAYERS[layers] if layers is not None else 0.0)


def fits(capacity: float) -> object:
    return lambda layers: cost(layers) <= capacity


def is_top(layers: tuple[int, int] | None) -> bool:
    return layers == (2, 0)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_capacity_steps_down_and_up(seed: int) -> None:
    sim = Simulation(Link(3_000_000, random.Random(seed)))
    sim.run_until(30)
    assert sim.first_time(0, is_top) is not None and sim.first_time(0, is_top) < 15  # type: ignore[operator]
    assert sim.changes_between(15, 30) == 0, "oscillates on a steady 3 Mbps link"

    sim.link.capacity = 700_000
    sim.run_until(60)
    dropped = sim.first_time(30, fits(700_000))
    assert dropped is not None and dropped - 30 <= 2.0, dropped
    settled = sim.layers_between(35, 60)
    assert all(cost(layers) <= 700_000 for layers in settled)
    assert sim.changes_between(35, 60) == 0, "oscillates on a steady 700 kbps link"
    assert settled[-1] == (1, 0)  # the best layer that fits, not a starved one

    sim.link.capacity = 3_000_000
    sim.run_until(90)
    back = sim.first_time(60, is_top)
    assert back is not None and back - 60 <= 15.0, back
    assert sim.changes_between(back + 1, 90) == 0  # type: ignore[operator]


def test_a_loss_burst_lowers_the_layer_and_it_comes_back() -> None:
    sim = Simulation(Link(3_000_000, random.Random(3)))
    sim.run_until(20)
    assert is_top(sim.layers)
    sim.link.loss = 0.3
    sim.run_until(23)
    assert any(not is_top(layers) for layers in sim.layers_between(20, 23))
    assert sim.estimator.loss_based_bitrate < 1_000_000
    sim.link.loss = 0.0
    sim.run_until(40)
    back = sim.first_time(23, is_top)
    assert back is not None and back - 23 <= 15.0


def test_jitter_on_a_steady_link_does_not_make_layers_flap() -> None:
    sim = Simulation(Link(2_500_000, random.Random(4), jitter=0.010))
    sim.run_until(40)
    assert is_top(sim.layers)
    assert sim.changes_between(15, 40) == 0
    estimates = [e for t, e in sim.estimates if t >= 15]
    assert min(estimates) > 1_540_000  # never low enough to cost the top layer


def test_a_link_too_slow_for_the_base_layer_still_carries_audio() -> None:
    sim = Simulation(Link(120_000, random.Random(5)))
    sim.run_until(20)
    assert sim.layers_between(10, 20) == [None] * len(sim.layers_between(10, 20))
    assert sim.estimator.target_bitrate < 200_000


def test_a_shaper_with_a_burst_and_a_packet_queue_is_measured_not_overrated() -> None:
    """The browser test's bottleneck: an htb class of 300 kbps whose bucket lets 1600 bytes
    through at once, in front of a 30-packet queue.  Probes of full-size packets measure
    its rate (within a quarter: the burst still shows), not its burst, and the layer that
    fits is kept, never lifted for a moment into the one that does not (each lift would
    freeze the receiver).  Probes of 255-byte padding packets measured up to 720 kbps
    here, and lifted the layer four times in 30 s."""
    sim = Simulation(Link(300_000, random.Random(6), burst=1600, queue_packets=30))
    sim.run_until(40)
    assert sim.probes_measured, "no probe was measured"
    assert max(sim.probes_measured) <= 1.25 * 300_000, sim.probes_measured
    assert set(sim.layers_between(10, 40)) == {(0, 0)}
    assert sim.estimator.target_bitrate >= cost((0, 0))  # not collapsed below what it carries


# --- estimator units -------------------------------------------------------------------


def feedback_for(arrivals: list[tuple[int, float | None]]) -> TransportFeedback:
    builder = TransportFeedbackBuilder(1, 2)
    for seq, arrival in arrivals:
        if arrival is not None:
            builder.add(seq, int(arrival * 1_000_000))
    [feedback] = builder.build()
    return feedback


def test_send_history_matches_feedback_across_the_sequence_wrap() -> None:
    history = SendHistory()
    for i, seq in enumerate((65534, 65535, 0, 1)):
        history.record(seq, 100 + i, i * 0.01)
    results = history.results(feedback_for([(65534, 1.0), (65535, None), (0, 1.02), (1, 1.03)]))
    assert [(r.send_time, r.arrival, r.size) for r in results] == [
        (0.0, 1.0, 100),
        (0.01, None, 101),
        (0.02, 1.02, 102),
        (0.03, 1.03, 103),
    ]
    assert history.results(feedback_for([(0, 1.02)])) == []  # reported once


def test_send_history_forgets_what_its_ring_no_longer_holds() -> None:
    history = SendHistory(capacity=16)
    for seq in range(40):
        history.record(seq, 100, seq * 0.01)
    # 0..23 were overwritten by 16..39: of 10..30 (11..29 reported lost) only 24.. are known.
    results = history.results(feedback_for([(10, 1.0), (30, 1.2)]))
    assert [round(r.send_time, 2) for r in results] == [0.24, 0.25, 0.26, 0.27, 0.28, 0.29, 0.3]
    assert [r.arrival for r in results] == [None] * 6 + [1.2]
    with pytest.raises(ValueError, match="power of two"):
        SendHistory(capacity=1000)


def test_growing_queueing_delay_is_detected_as_overuse() -> None:
    estimator = GccEstimator(start_bitrate=1_000_000)
    seq = 0
    for batch in range(40):
        arrivals = []
        for i in range(10):
            send = batch * 0.05 + i * 0.005
            estimator.on_packet_sent(seq, 1200, send)
            # Each packet waits 2 ms longer than the one before: a filling queue.
            arrivals.append((seq, send + 0.02 + seq * 0.002))
            seq += 1
        estimator.on_transport_feedback(feedback_for(arrivals), batch * 0.05 + 0.1)
        if estimator.usage is BandwidthUsage.OVERUSING:
            break
    assert estimator.usage is BandwidthUsage.OVERUSING
    assert estimator.delay_based_bitrate < 1_000_000


def test_remb_stands_in_without_transport_cc_and_caps_with_it() -> None:
    estimator = GccEstimator(start_bitrate=800_000)
    estimator.on_remb(300_000)
    assert estimator.target_bitrate == 300_000
    estimator.on_packet_sent(0, 1200, 0.0)
    estimator.on_packet_sent(1, 1200, 0.005)
    estimator.on_transport_feedback(feedback_for([(0, 0.02), (1, 0.025)]), 0.05)
    assert estimator.target_bitrate == 300_000  # REMB caps
    estimator.on_remb(5_000_000)
    assert estimator.target_bitrate == pytest.approx(800_000, rel=0.1)


def test_prober_sends_a_cluster_at_the_asked_rate_then_waits() -> None:
    prober = Prober(interval=2.0)
    assert prober.start(1_920_000, 10.0)
    sizes: list[int] = []
    now = 10.0
    while prober.active:
        sizes.extend(prober.due(now))
        now += 0.001
    # 30 ms at 1.92 Mbps is 6 packets of 1200 bytes, 5 ms apart.
    assert sizes == [1200] * 6
    assert now - 10.0 == pytest.approx(0.026, abs=0.002)
    assert not prober.start(1_920_000, 11.0)
    assert prober.start(1_920_000, 12.0) and prober.cluster == 2


# --- allocator units -------------------------------------------------------------------


def video(consumer_id: str, priority: Priority = Priority.VIDEO, **kw: object) -> Demand:
    return Demand(consumer_id, priority, dict(VIDEO_LAYERS), **kw)  # type: ignore[arg-type]


def test_priority_order_audio_screen_speaker_video() -> None:
    allocator = BitrateAllocator()
    demands = [
        video("other"),
        video("speaker", Priority.SPEAKER),
        video("screen", Priority.SCREEN),
        Demand("audio", Priority.AUDIO, {(0, 0): AUDIO}),
    ]
    result = allocator.allocate(40_000 + 3 * 150_000 + 1_350_000 * 1.15 + 10, demands, 0.0)
    # Everyone gets the base layer first; then the screen share climbs to the top,
    # then the speaker, and other video last.
    assert result.layers == {
        "audio": (0, 0),
        "screen": (2, 0),
        "speaker": (0, 0),
        "other": (0, 0),
    }
    assert result.probe_bitrate is not None
    assert result.probe_bitrate == pytest.approx(result.allocated + 350_000 * PROBE_MARGIN)


def test_consumers_of_one_class_share_round_robin() -> None:
    allocator = BitrateAllocator()
    result = allocator.allocate(2 * 500_000 * 1.15 + 1, [video("a"), video("b")], 0.0)
    assert result.layers == {"a": (1, 0), "b": (1, 0)}


def test_hysteresis_keeps_a_layer_that_fits_and_holds_after_a_downgrade() -> None:
    allocator = BitrateAllocator()
    demands = [video("v")]
    assert allocator.allocate(1_500_000 * 1.15, demands, 0.0).layers["v"] == (2, 0)
    # The estimate dips below the upgrade threshold, even a little below the
    # layer's cost (an AIMD cut): kept.
    assert allocator.allocate(1_520_000, demands, 1.0).layers["v"] == (2, 0)
    assert allocator.allocate(1_500_000 * KEEP_MARGIN, demands, 1.5).layers["v"] == (2, 0)
    assert allocator.allocate(1_300_000, demands, 2.0).layers["v"] == (1, 0)
    # Back up at once would flap: held for UPGRADE_HOLD seconds.
    assert allocator.allocate(2_000_000, demands, 2.0 + UPGRADE_HOLD / 2).layers["v"] == (1, 0)
    assert allocator.allocate(2_000_000, demands, 2.0 + UPGRADE_HOLD).layers["v"] == (2, 0)


def test_paused_and_empty_demands_get_nothing_and_no_probe() -> None:
    allocator = BitrateAllocator()
    result = allocator.allocate(
        10_000_000, [video("p", paused=True), Demand("e", Priority.VIDEO, {})], 0.0
    )
    assert result.layers == {"p": None, "e": None}
    assert result.probe_bitrate is None and result.allocated == 0


def test_upgrades_need_what_the_link_was_seen_to_carry() -> None:
    """A high estimate alone does not lift a layer: the upgrade limit (acknowledged or
    probed throughput) must cover it; a layer already held is kept on the estimate."""
    allocator = BitrateAllocator()
    demands = [video("v")]
    assert allocator.allocate(600_000, demands, 0.0, upgrade_limit=None).layers["v"] == (1, 0)
    # The estimate allows the top layer, but only 700 kbps were ever acknowledged.
    result = allocator.allocate(3_000_000, demands, 5.0, upgrade_limit=700_000)
    assert result.layers["v"] == (1, 0)
    assert result.probe_bitrate is not None  # a probe is what would show more
    # A probe measured enough: up.
    assert allocator.allocate(3_000_000, demands, 6.0, upgrade_limit=2_000_000).layers["v"] == (
        2,
        0,
    )
    # Kept while the estimate holds it, whatever the limit.
    assert allocator.allocate(1_600_000, demands, 7.0, upgrade_limit=100_000).layers["v"] == (2, 0)


def test_a_higher_layer_measured_cheaper_is_never_the_base_layer() -> None:
    """The sender starves its middle encoding for a moment: it measures below the lowest."""
    allocator = BitrateAllocator()
    demand = Demand("v", Priority.VIDEO, {(0, 0): 150_000.0, (1, 0): 110_000.0, (2, 0): 0.0})
    # Ordered by cost, (1, 0) would be the base layer and fit here.
    assert allocator.allocate(140_000, [demand], 0.0).layers["v"] is None
    assert BitrateAllocator().allocate(200_000, [demand], 0.0).layers["v"] == (0, 0)


# --- loss windows, probe validity, the transport's budget --------------------------------


def test_a_held_layer_that_dips_below_the_one_under_it_is_kept() -> None:
    """The sender's encoder, short of CPU, sends its upper encoding at a few frames a
    second: measured over a second it dips below the lower one now and then. A receiver
    whose link carries it keeps it (a CI run saw the free receiver moved to the lower
    encoding, on a 600 kbps estimate, whenever that happened)."""
    allocator = BitrateAllocator()
    layers = {(0, 0): 150_000.0, (1, 0): 500_000.0}
    for t in range(3):
        result = allocator.allocate(900_000, [Demand("v", Priority.VIDEO, layers)], float(t))
    assert result.layers["v"] == (1, 0)
    dip = {(0, 0): 150_000.0, (1, 0): 60_000.0}
    for when in (3.0, 3.5, 4.0):
        result = allocator.allocate(900_000, [Demand("v", Priority.VIDEO, dip)], when)
        assert result.layers["v"] == (1, 0)
        assert result.probe_bitrate is None  # nothing above it to want
    # Starved for longer than PEAK_WINDOW: no longer a step above the lower encoding.
    for t in range(5, 10):
        result = allocator.allocate(900_000, [Demand("v", Priority.VIDEO, dip)], float(t))
    assert result.layers["v"] == (0, 0)


def test_what_a_consumer_holds_is_remembered_by_layer_not_by_step_index() -> None:
    """A middle encoding that drops out of the steps must not make the step above it
    count as held: the top is an upgrade, judged as one."""
    allocator = BitrateAllocator()
    layers = {(0, 0): 150_000.0, (1, 0): 500_000.0, (2, 0): 1_500_000.0}
    for t in range(3):
        result = allocator.allocate(1_500_000, [Demand("v", Priority.VIDEO, layers)], float(t))
    assert result.layers["v"] == (1, 0)
    # Kept, the top would be charged at KEEP_MARGIN and fit; as an upgrade it needs
    # UPGRADE_HEADROOM, which 1.5 Mbps does not leave.
    without_middle = {(0, 0): 150_000.0, (2, 0): 1_500_000.0}
    result = allocator.allocate(1_500_000, [Demand("v", Priority.VIDEO, without_middle)], 3.0)
    assert result.layers["v"] == (0, 0)


def test_an_encoding_quiet_for_a_moment_is_still_held_when_it_is_back() -> None:
    """An encoder short of CPU leaves its upper encoding without a packet for a second
    now and then: the consumer leaves it meanwhile, and has it back at once after."""
    allocator = BitrateAllocator()
    layers = {(0, 0): 150_000.0, (1, 0): 500_000.0}
    for t in range(3):
        result = allocator.allocate(900_000, [Demand("v", Priority.VIDEO, layers)], float(t))
    assert result.layers["v"] == (1, 0)
    quiet = {(0, 0): 150_000.0}
    result = allocator.allocate(900_000, [Demand("v", Priority.VIDEO, quiet)], 3.0)
    assert result.layers["v"] == (0, 0)
    # Back a second later: kept (no UPGRADE_HOLD, no evidence beyond the estimate needed).
    result = allocator.allocate(900_000, [Demand("v", Priority.VIDEO, layers)], 4.0, 200_000)
    assert result.layers["v"] == (1, 0)
    # Quiet for longer than HELD_SILENCE: gone, and back it is an upgrade to earn.
    for when in (5.0, 6.0, 7.0, 8.5):
        allocator.allocate(900_000, [Demand("v", Priority.VIDEO, quiet)], when)
    result = allocator.allocate(900_000, [Demand("v", Priority.VIDEO, layers)], 9.0, 200_000)
    assert result.layers["v"] == (0, 0)


def test_the_first_probe_asks_for_three_times_the_estimate() -> None:
    """libwebrtc's initial probe: a receiver already on its top layer wants nothing more,
    yet its estimate must learn the link (not stay at 1.5x what the media uses)."""
    bandwidth = TransportBandwidth(start_bitrate=600_000)
    bandwidth.on_packet_sent(0, 1000, 0.0)
    bandwidth.on_transport_feedback(feedback_for([(0, 1.0)]), 0.1)
    top_only = [Demand("v", Priority.VIDEO, {(0, 0): 150_000.0})]
    bandwidth.allocate(top_only, 0.1)  # the budget charges the packet sent
    bandwidth.allocate(top_only, 0.2)
    assert bandwidth.probing and bandwidth.prober.target == pytest.approx(1_800_000, rel=0.01)
    bandwidth.prober.due(1.0)  # the cluster sent
    # Once: the next probe is what the allocator asks (the base layer, not yet acknowledged).
    allocation = bandwidth.allocate(top_only, 2.0)
    assert bandwidth.prober.target == allocation.probe_bitrate


def test_the_probe_asks_for_the_peak_the_upgrade_is_judged_by() -> None:
    allocator = BitrateAllocator()
    layers = {(0, 0): 150_000.0, (1, 0): 500_000.0}
    allocator.allocate(400_000, [Demand("v", Priority.VIDEO, layers)], 0.0)
    dip = {(0, 0): 150_000.0, (1, 0): 200_000.0}
    result = allocator.allocate(400_000, [Demand("v", Priority.VIDEO, dip)], 1.0)
    assert result.layers["v"] == (0, 0)
    # The upgrade needs 350 kbps more (the peak), not the 50 kbps of the dip.
    assert result.probe_bitrate == pytest.approx(150_000 + 350_000 * PROBE_MARGIN)


def test_a_probe_a_little_above_the_media_is_still_a_short_burst() -> None:
    """Padding of 12 kbps at its own rate would space six packets 0.8 s apart: a cluster
    longer than a measurement may span, with media tagged all along. It is sent within
    the prober's max_span instead."""
    prober = Prober()
    assert prober.start(212_000, 0.0, media_bitrate=200_000)
    sent: list[float] = []
    now = 0.0
    while prober.active:
        sent.extend(now for _ in prober.due(now))
        now += 0.001
    assert len(sent) == 6
    assert sent[-1] - sent[0] <= prober.max_span + 0.002


def test_loss_is_judged_over_twenty_packets_not_per_feedback_message() -> None:
    """Feedback messages covering a packet or two (a low rate) must not read one loss as
    50 %: the loss-based rate moves once a window of at least 20 packets is complete."""
    estimator = GccEstimator(start_bitrate=500_000)
    for seq in range(40):
        estimator.on_packet_sent(seq, 1000, seq * 0.02)
    # One of the first two lost, reported alone: no cut yet.
    estimator.on_transport_feedback(feedback_for([(0, 0.02), (1, None), (2, 0.06)]), 0.1)
    assert estimator.loss_based_bitrate == pytest.approx(500_000, rel=0.01)
    assert estimator.loss_fraction is None
    # The window completes with 3 lost of 21 (14 %): cut by half of that.
    arrivals: list[tuple[int, float | None]] = [(s, 0.02 + s * 0.02) for s in range(3, 21)]
    arrivals[5] = (8, None)
    arrivals[9] = (12, None)
    estimator.on_transport_feedback(feedback_for(arrivals), 0.5)
    assert estimator.loss_fraction == pytest.approx(3 / 21)
    assert estimator.loss_based_bitrate < 500_000 * 0.95
    assert not estimator.probe_allowed(0.6)  # no probing into a lossy link


def test_a_probe_is_measured_whole_and_a_burst_faster_than_sent_is_no_rate() -> None:
    def probe(arrival_spacing: float) -> dict[int, float]:
        estimator = GccEstimator(start_bitrate=100_000)
        for seq in range(6):
            estimator.on_packet_sent(seq, 1200, seq * 0.01, probe_cluster=1)
        first = feedback_for([(s, 1.0 + s * arrival_spacing) for s in range(3)])
        estimator.on_packet_sent(6, 1200, 0.06)  # media after the cluster: it is whole
        estimator.on_transport_feedback(first, 0.2)
        assert not estimator.probe_results  # half of it reported: not yet
        estimator.on_transport_feedback(
            feedback_for([(s, 1.0 + s * arrival_spacing) for s in range(3, 6)]), 0.3
        )
        return estimator.probe_results

    # Sent at 960 kbps, received at the same spacing: 960 kbps.
    assert probe(0.01) == {1: pytest.approx(960_000)}
    # Received 4x faster than sent (a shaper's bucket let it through whole): no rate.
    assert probe(0.0025) == {}


def test_an_upgrade_is_judged_by_the_layers_peak_not_a_momentary_dip() -> None:
    """The sender starves its upper encoding for a moment: measured then, it would fit."""
    allocator = BitrateAllocator()
    layers = {(0, 0): 150_000.0, (1, 0): 500_000.0}
    for t in range(10):
        result = allocator.allocate(400_000, [Demand("v", Priority.VIDEO, layers)], float(t))
        assert result.layers["v"] == (0, 0)
    dip = {(0, 0): 150_000.0, (1, 0): 200_000.0}
    result = allocator.allocate(400_000, [Demand("v", Priority.VIDEO, dip)], 10.0)
    assert result.layers["v"] == (0, 0)
    # Once the dip is all that was seen for the window, it is what the layer costs.
    for t in range(11, 18):
        result = allocator.allocate(400_000, [Demand("v", Priority.VIDEO, dip)], float(t))
    assert result.layers["v"] == (1, 0)


def test_retransmissions_wait_for_the_budget_and_the_round_trip() -> None:
    """What was sent over the last half second may not exceed the estimate (or what is sent
    whatever the estimate), and a packet is resent once per feedback round trip."""
    bandwidth = TransportBandwidth(start_bitrate=300_000)
    assert bandwidth.retransmission_allowed(0.0)  # no feedback yet: not limiting
    bandwidth.on_packet_sent(0, 1000, 0.0)
    bandwidth.on_transport_feedback(feedback_for([(0, 1.0)]), 0.25)
    assert bandwidth.limiting and bandwidth.resend_interval == pytest.approx(0.25)
    bandwidth.allocate([Demand("a", Priority.AUDIO, {(0, 0): 40_000.0})], 0.25)
    # 0.5 s of a 300 kbps estimate is 18750 bytes: sending 30 kB at once overdraws it.
    for seq in range(1, 31):
        bandwidth.on_packet_sent(seq, 1000, 0.3)
    assert not bandwidth.retransmission_allowed(0.3)
    assert not bandwidth.retransmission_allowed(0.75)  # overdrawn by at most 18.75 kB
    assert bandwidth.retransmission_allowed(0.9)  # paid back at 37.5 kB/s
    # A forced base layer above the estimate raises the budget's rate to what it sends.
    demands = [Demand("v", Priority.VIDEO, {(0, 0): 600_000.0, (1, 0): 900_000.0})]
    bandwidth.allocate(demands, 0.9)
    for seq in range(31, 61):
        bandwidth.on_packet_sent(seq, 1000, 0.9)
    assert not bandwidth.retransmission_allowed(0.9)
    assert bandwidth.retransmission_allowed(1.3)  # 75 kB/s: 30 kB in 0.4 s
