"""The send-side bandwidth estimator's CPU cost per transport (sans-I/O, no sockets).

One command: `python benchmarks/gcc_estimator.py` (`--seconds`, `--bitrate`).

Replays what one WebRTC transport toward a receiver feeds
`roomler.sfu.engine.gcc.GccEstimator` and `roomler.sfu.engine.allocation.BitrateAllocator`
over `--seconds` of simulated time: a packet record per sent RTP packet (1200 bytes at
`--bitrate`), a transport-wide cc feedback every 50 ms (built and parsed as on the wire,
arrivals with a few ms of jitter), an allocation over an audio and two simulcast video
consumers after each feedback.  Only those calls are timed (process CPU time), so the
figure is the estimator's own CPU per transport per second of media, to be added to the
forwarding cost that benchmarks/sfu_forward.py measures.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import time

from roomler.sfu.engine.allocation import BitrateAllocator, Demand, Priority
from roomler.sfu.engine.gcc import GccEstimator
from roomler.sfu.rtcp import TransportFeedback, TransportFeedbackBuilder, parse_rtcp

PACKET = 1200
FEEDBACK_INTERVAL = 0.05
LAYERS = {(0, 0): 150_000.0, (1, 0): 500_000.0, (2, 0): 1_500_000.0}


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def run(seconds: float, bitrate: float) -> tuple[float, int, int]:
    """(CPU seconds in estimator + allocator, packets, feedbacks)."""
    rng = random.Random(1)
    estimator, allocator = GccEstimator(), BitrateAllocator()
    builder = TransportFeedbackBuilder(1, 2)
    demands = [
        Demand("audio", Priority.AUDIO, {(0, 0): 40_000.0}),
        Demand("speaker", Priority.SPEAKER, dict(LAYERS)),
        Demand("other", Priority.VIDEO, dict(LAYERS)),
    ]
    interval = PACKET * 8 / bitrate
    now, seq, packets, feedbacks, cpu = 0.0, 0, 0, 0, 0.0
    next_feedback = FEEDBACK_INTERVAL
    wire: list[bytes] = []
    while now < seconds:
        start = time.process_time()
        estimator.on_packet_sent(seq & 0xFFFF, PACKET, now)
        cpu += time.process_time() - start
        builder.add(seq & 0xFFFF, int((now + 0.02 + rng.random() * 0.003) * 1_000_000))
        seq += 1
        packets += 1
        now += interval
        if now >= next_feedback:
            next_feedback += FEEDBACK_INTERVAL
            wire = [feedback.serialize() for feedback in builder.build()]
            start = time.process_time()
            for data in wire:
                for packet in parse_rtcp(data):
                    if isinstance(packet, TransportFeedback):
                        estimator.on_transport_feedback(packet, now)
                        feedbacks += 1
            allocator.allocate(estimator.target_bitrate, demands, now)
            cpu += time.process_time() - start
    return cpu, packets, feedbacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--bitrate", type=float, default=2_500_000.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    cpu, packets, feedbacks = run(args.seconds, args.bitrate)
    per_second = cpu / args.seconds
    print(
        f"{args.seconds:.0f} s at {args.bitrate / 1e6:.2f} Mbps: {packets} packets, "
        f"{feedbacks} feedbacks"
    )
    print(
        f"estimator + allocator CPU: {per_second * 1e3:.2f} ms per transport per second "
        f"({per_second * 100:.2f} % of a core), {cpu / packets * 1e6:.2f} µs per packet sent"
    )


if __name__ == "__main__":
    main()
