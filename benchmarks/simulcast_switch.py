"""What simulcast adds per forwarded packet, sans-I/O (no sockets, no SRTP).

One command: `python benchmarks/simulcast_switch.py` (`--packets`).

Times, on VP8 packets shaped like Chrome's (15-bit PictureID, TL0PICIDX, TID/Y; 1000-byte
payloads, three temporal layers 0,2,1,2 ...):

- reading a packet for switching (`layer_packet`: the VP8 descriptor), done once per
  incoming packet and shared by all of a producer's simulcast consumers;
- one consumer's `SimulcastSwitcher.forward` (numbering, PictureID/TL0PICIDX rewrite,
  temporal filter) at the top temporal target, and at target 0 (three packets in four
  dropped);
- `SeqManager.input` alone.

These add to the simple consumer's per-packet path (header template, SRTP, sendto), which
benchmarks/sfu_forward.py measures end to end.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from roomler.sfu.engine.layers import LayerPacket, SimulcastSwitcher, Vp8Rewriter, layer_packet
from roomler.sfu.engine.seq_manager import SeqManager

TIDS = (0, 2, 1, 2)


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}"


def vp8(n: int) -> bytes:
    picture_id, tid = n & 0x7FFF, TIDS[n % 4]
    descriptor = bytes(
        [0x90, 0xE0, 0x80 | (picture_id >> 8), picture_id & 0xFF, (n // 4) & 0xFF]
    ) + bytes([(tid << 6) | (0x20 if tid else 0)])
    header = bytes([0x10 if n == 0 else 0x11, 0x02, 0x00])
    return descriptor + header + bytes(1000)


def per_packet(function: object, items: list[object]) -> float:
    start = time.perf_counter()
    for item in items:
        function(item)  # type: ignore[operator]
    return (time.perf_counter() - start) / len(items) * 1e6


def switch_cost(packets: list[LayerPacket], temporal_target: int) -> float:
    switcher = SimulcastSwitcher(3, 3, 90_000, rewriter=Vp8Rewriter())
    switcher.set_target(2, temporal_target)
    start = time.perf_counter()
    for index, packet in enumerate(packets):
        switcher.forward(packet, index / 1000)
    return (time.perf_counter() - start) / len(packets) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=30_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    payloads = [vp8(n) for n in range(args.packets)]
    read_us = per_packet(
        lambda n: layer_packet("video/VP8", 2, n & 0xFFFF, n * 3000, True, payloads[n]),
        list(range(args.packets)),
    )
    packets: list[LayerPacket] = [
        layer_packet("video/VP8", 2, n & 0xFFFF, n * 3000, True, payloads[n])
        for n in range(args.packets)
    ]
    print(f"layer_packet (once per incoming packet): {read_us:.2f} µs")
    for target in (2, 0):
        us = switch_cost(packets, target)
        print(f"SimulcastSwitcher.forward, temporal target {target} (per consumer): {us:.2f} µs")
    seq = SeqManager(16)
    print(f"SeqManager.input: {per_packet(seq.input, list(range(args.packets))):.2f} µs")


if __name__ == "__main__":
    main()
