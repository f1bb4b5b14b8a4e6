"""Firefox as a simulcast sender to Chromium through roomler.sfu (issue 13).

Debian's firefox-esr runs headless without a driver (tests/sfu/browser/firefox.py):
the test page starts on its own, produces its fake camera as three rid-based
simulcast encodings through mediasoup-client's Firefox handler, and POSTs its
getStats() to the signaling server.  A Chromium page consumes the producer, decodes
the top encoding Firefox sends, and after ``setPreferredLayers(0)`` the lowest one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.sfu.browser.firefox import firefox_page
from tests.sfu.browser.harness import BrowserPeer, evidence, poll
from tests.sfu.browser.signaling import SignalingServer

pytest_plugins = ("tests.sfu.browser.fixtures",)
pytestmark = [pytest.mark.browser, pytest.mark.slow]

OpenPeer = Callable[[str], Awaitable[BrowserPeer]]

CAPTURE = (1280, 720)
START_TIMEOUT = 30.0  # Firefox's first start creates its profile
LAYERS_TIMEOUT = 30.0  # Firefox turns its upper encodings on as its estimate grows
SWITCH_TIMEOUT = 10.0


def encoded_widths(report: dict[str, Any]) -> list[int]:
    """The frame widths Firefox reports encoding, one per flowing encoding, smallest first."""
    outbound = (report.get("stats") or {}).get("outbound") or {}
    encodings = next(iter(outbound.values()), {}).get("encodings", [])
    return sorted(e["frameWidth"] for e in encodings if e.get("frameWidth"))


async def test_firefox_simulcast_reaches_chromium_top_then_lowest_encoding(
    open_peer: OpenPeer, signaling: SignalingServer, tmp_path: Path
) -> None:
    url = f"{signaling.url}?autostart=simulcast&name=firefox&width={CAPTURE[0]}&height={CAPTURE[1]}"
    with firefox_page(url, tmp_path / "firefox-profile"):

        async def report() -> dict[str, Any]:
            return signaling.reports.get("firefox", {})

        ok, state = await poll(
            report, lambda r: bool(r.get("producerId") or r.get("error")), START_TIMEOUT
        )
        log = (tmp_path / "firefox-profile" / "firefox.log").read_text(errors="replace")
        assert ok and not state.get("error"), f"Firefox did not produce: {state}\n{log[-3000:]}"
        producer_id = state["producerId"]
        assert [e.get("rid") for e in state["rtpParameters"]["encodings"]] == ["r0", "r1", "r2"]

        ok, state = await poll(report, lambda r: len(encoded_widths(r)) == 3, LAYERS_TIMEOUT)
        assert ok, (
            f"Firefox does not encode three layers: {json.dumps(state)}\n"
            f"{await evidence(signaling)}"
        )
        b = await open_peer("b")
        await b.join(signaling.ws_url, send=False)
        video = (await b.consume(producer_id))["id"]
        assert signaling.consumers[video].type == "simulcast"

        async def inbound() -> dict[str, Any]:
            stats: dict[str, Any] = (await b.stats())["inbound"][video]
            return stats

        async def width_reaches(wanted: Callable[[list[int]], int], timeout: float) -> None:
            ok, last = await poll(
                inbound,
                lambda s: s["frameWidth"] == wanted(encoded_widths(signaling.reports["firefox"])),
                timeout,
            )
            assert ok, (
                f"b's video is {last['frameWidth']}x{last['frameHeight']}; Firefox encodes"
                f" {encoded_widths(signaling.reports['firefox'])} wide, after {timeout} s\n"
                f"firefox: {json.dumps(signaling.reports['firefox'])}\n"
                f"{await evidence(signaling, [b])}"
            )

        await width_reaches(max, LAYERS_TIMEOUT)
        reply = await b.set_preferred_layers(video, 0)
        assert reply["preferredLayers"]["spatialLayer"] == 0
        await width_reaches(min, SWITCH_TIMEOUT)
