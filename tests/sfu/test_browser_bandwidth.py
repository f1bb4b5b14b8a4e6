"""Each receiver gets the simulcast layer its link carries (issue 13), three Chromium pages.

Page ``a`` produces simulcast (mediasoup-client, three VP8 encodings configured) from a
fake camera playing random noise (`write_noise_y4m`: every frame new, so every encoding
spends its bitrate); ``free`` and ``shaped`` consume it. The downlink of ``shaped`` is
shaped on the loopback device: an htb class of 300 kbit/s (one packet of burst, a
30-packet queue) for the UDP packets whose source port is its receive transport's. The
SFU's estimate for that transport (transport-cc feedback from Chromium) must put
``shaped`` on a lower layer,
decoding smoothly, while ``free`` keeps the top one; once the shaping is lifted,
``shaped`` climbs back to the top layer within 15 s. "Top" and frame rates are judged
against what the sender reports encoding (a 2-core machine may not hold 30 fps, nor all
three encodings: Chromium's encoder stops the upper one when short of CPU).

Needs ``tc`` and root (CAP_NET_ADMIN); without them the test skips, loudly. The qdisc it
adds is always removed.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.sfu.browser.harness import BrowserPeer, evidence, poll
from tests.sfu.browser.signaling import SignalingServer

pytest_plugins = ("tests.sfu.browser.fixtures",)
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # Issue 13: skipped from 2026-12-04 after a fresh-clone CI run in which the *free*
    # receiver was on 160 of the 320 wide the sender encoded. The SFU was at fault, not the
    # free receiver's estimate (no over-use, no loss in any run): its allocator moved a
    # receiver off an encoding that the sender's encoder, short of CPU, sent at a few
    # frames a second -- measured below the encoding under it, or silent for a second --
    # and made it earn the way back with a probe that could not show enough. Fixed in
    # allocation.py/bandwidth.py/gcc.py; 5 of 5 in a row under the heavy lock with both
    # cores busy (two Python busy loops, load average 3.2-4.8). Of 11 earlier loaded runs
    # with part of the fixes, one failed on the *shaped* receiver: frozen 33 % of the watch
    # (4 s without a decoded frame right after its switch to the lowest encoding).
]

OpenPeer = Callable[[str], Awaitable[BrowserPeer]]

SHAPED_RATE = "300kbit"
TOP_TIMEOUT = 30.0  # the sender's own estimate turns its top encoding on
DOWN_TIMEOUT = 10.0  # the SFU drops within 2 s; Chromium's decoder and stats lag behind
BACK_TIMEOUT = 15.0  # issue 13: back on the top layer within 15 s
WATCH = 10.0  # how long the shaped receiver is watched on its lower layer
SAMPLE = 0.5
TOP_SPAN = 3  # samples either side over which the sender's top encoding is judged


def _tc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["tc", *args], capture_output=True, text=True, timeout=10)


def _require_tc() -> None:
    if shutil.which("tc") is None:
        pytest.skip("!!!!! `tc` is missing: the bandwidth-shaping browser test is SKIPPED !!!!!")
    probe = _tc("qdisc", "show", "dev", "lo")
    if probe.returncode != 0:
        pytest.skip(f"!!!!! `tc` cannot read lo ({probe.stderr.strip()}): SKIPPED !!!!!")


@contextmanager
def shaped_downlink(source_port: int) -> Iterator[Callable[[], None]]:
    """Shape UDP from ``source_port`` on lo; yields a function that lifts the shaping."""
    added = _tc("qdisc", "add", "dev", "lo", "root", "handle", "1:", "htb", "default", "10")
    if added.returncode != 0:
        pytest.skip(f"!!!!! cannot add an htb qdisc on lo ({added.stderr.strip()}): SKIPPED !!!!!")
    lifted = False

    def lift() -> None:
        nonlocal lifted
        if not lifted:
            lifted = True
            _tc("qdisc", "del", "dev", "lo", "root", "handle", "1:")

    try:
        for command in (
            ("class", "add", "dev", "lo", "parent", "1:", "classid", "1:10", "htb", "rate",
             "10gbit"),
            ("class", "add", "dev", "lo", "parent", "1:", "classid", "1:20", "htb", "rate",
             SHAPED_RATE, "ceil", SHAPED_RATE, "burst", "1600", "cburst", "1600"),
            ("qdisc", "add", "dev", "lo", "parent", "1:20", "handle", "20:", "pfifo", "limit",
             "30"),
            ("filter", "add", "dev", "lo", "parent", "1:", "protocol", "ip", "prio", "1", "u32",
             "match", "ip", "protocol", "17", "0xff", "match", "ip", "sport", str(source_port),
             "0xffff", "flowid", "1:20"),
        ):  # fmt: skip
            result = _tc(*command)
            assert result.returncode == 0, f"tc {' '.join(command)}: {result.stderr}"
        yield lift
    finally:
        lift()


def video_inbound(stats: dict[str, Any]) -> dict[str, Any]:
    [video] = [s for s in stats["inbound"].values() if s["kind"] == "video"]
    return video


def sender_encodings(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """The encodings the sender encodes now (its encoder may stop one when short of CPU)."""
    [video] = [s for s in stats["outbound"].values() if s["kind"] == "video"]
    return [e for e in video["encodings"] if e["frameWidth"] and e["framesPerSecond"]]


def encoded_top(stats: dict[str, Any]) -> int:
    return max((e["frameWidth"] for e in sender_encodings(stats)), default=0)


def smoothed(tops: list[int], index: int) -> int:
    """The sender's top width around sample ``index`` (+-TOP_SPAN samples): a moment's
    framesPerSecond of an encoding reads null now and then while it is encoded."""
    return max(tops[max(0, index - TOP_SPAN) : index + TOP_SPAN + 1])


async def watch(
    peer: BrowserPeer, sender: BrowserPeer, seconds: float
) -> list[tuple[dict[str, Any], int]]:
    """(video inbound stats, the sender's top width then) every SAMPLE seconds."""
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        inbound = video_inbound(await peer.stats())
        samples.append((inbound, encoded_top(await sender.stats())))
        await asyncio.sleep(SAMPLE)
    return samples


def frozen_fraction(samples: list[dict[str, Any]]) -> float:
    """The share of sampling intervals in which no new frame was decoded."""
    pairs = list(zip(samples, samples[1:], strict=False))
    frozen = sum(1 for a, b in pairs if b["framesDecoded"] == a["framesDecoded"])
    return frozen / len(pairs)


async def test_the_shaped_receiver_gets_a_lower_layer_and_climbs_back(
    open_noisy_peer: OpenPeer, signaling: SignalingServer
) -> None:
    _require_tc()
    sender = await open_noisy_peer("a")
    free, shaped = await open_noisy_peer("free"), await open_noisy_peer("shaped")
    await sender.join(signaling.ws_url)
    await sender.produce(simulcast=True)
    for receiver in (free, shaped):
        await receiver.join(signaling.ws_url, send=False)
        await receiver.consume_all(sender)
    peers = [sender, free, shaped]

    async def width(peer: BrowserPeer) -> int:
        return int(video_inbound(await peer.stats())["frameWidth"] or 0)

    tops: list[int] = []  # the sender's top width at each poll, for smoothed()

    async def width_and_top(peer: BrowserPeer) -> tuple[int, int]:
        """(what ``peer`` decodes, the top width the sender encodes now)."""
        decoded = await width(peer)
        tops.append(encoded_top(await sender.stats()))
        return decoded, smoothed(tops, len(tops) - 1)

    async def reaches(
        peer: BrowserPeer, predicate: Callable[[tuple[int, int]], bool], timeout: float
    ) -> int:
        ok, last = await poll(lambda: width_and_top(peer), predicate, timeout)
        assert ok, (
            f"{peer.name} (width, sender's top) {last} after {timeout} s\n"
            f"{await evidence(signaling, peers)}"
        )
        return int(last[0])

    # Unshaped, both get the top encoding once the sender sends it.
    ok, _ = await poll(sender.stats, lambda s: len(sender_encodings(s)) >= 2, TOP_TIMEOUT)
    assert ok, f"the sender does not send simulcast\n{await evidence(signaling, peers)}"
    for receiver in (free, shaped):
        await reaches(receiver, lambda wt: wt[0] >= wt[1] > 0, TOP_TIMEOUT)

    with shaped_downlink(shaped.ports["recv"]) as lift:
        low = await reaches(shaped, lambda wt: 0 < wt[0] < wt[1], DOWN_TIMEOUT)
        samples = await watch(shaped, sender, WATCH)
        free_width, _ = await width_and_top(free)
        inbound = [s for s, _ in samples]
        watched_tops = [top for _, top in samples]
        # The sender's top over the last TOP_SPAN samples of the watch and now (the
        # samples before the watch are 10 s old).
        free_top = max(watched_tops[-TOP_SPAN:] + tops[-1:])
        encodings = sender_encodings(await sender.stats())

        frozen = frozen_fraction(inbound)
        trace = [(s["frameWidth"], s["framesDecoded"], top) for s, top in samples]
        assert frozen < 0.10, f"shaped receiver frozen {frozen:.0%} of the time: {trace}"
        # Below what the sender encodes on top at each moment (its encoder, short of CPU,
        # may stop its top encoding for a while: then the next one is the top).
        assert all(
            0 < (s["frameWidth"] or 0) < smoothed(watched_tops, i) for i, s in enumerate(inbound)
        ), trace
        encoded_fps = max(
            (e["framesPerSecond"] or 0 for e in encodings if e["frameWidth"] == low), default=0
        )
        decoded = inbound[-1]["framesDecoded"] - inbound[0]["framesDecoded"]
        decoded_fps = decoded / (SAMPLE * (len(inbound) - 1))
        assert decoded_fps >= 0.6 * encoded_fps, (decoded_fps, encoded_fps, encodings)
        # The free receiver is not harmed: it gets what the sender encodes on top.
        assert free_width >= free_top, (
            f"free receiver {free_width} wide of {free_top}\n{await evidence(signaling, peers)}"
        )

        lift()
        started = time.monotonic()
        await reaches(shaped, lambda wt: wt[0] >= wt[1] > 0, BACK_TIMEOUT)
        assert time.monotonic() - started < BACK_TIMEOUT
