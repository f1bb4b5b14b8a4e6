"""Who is speaking (issue 14 item 3): the SFU reads the ssrc-audio-level extension of
every audio packet, and the page of a silent participant names the one who speaks.

Both pages run in a Chromium whose fake microphone plays a generated WAV (a loud tone,
`--use-file-for-fake-audio-capture`); Bob's page gets a silent microphone instead (an
init script hands the app a Web Audio track that carries silence), so only Alice speaks.
"""

from __future__ import annotations

import math
import struct
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, async_playwright, expect

from tests.web.conftest import NewUser, new_user, server  # noqa: F401  (fixtures)
from tests.web.harness import CHROMIUM, CHROMIUM_ARGS, ServerProcess, alice_and_bob_in_general
from tests.web.test_call import assert_video_plays, remote_tile

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SPEAKER_NAMED_SECS = 2.0  # the bound

# getUserMedia as usual, but the microphone track replaced by one that carries silence.
SILENT_MICROPHONE = """
(() => {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = async (constraints) => {
    const stream = await original(constraints);
    for (const track of stream.getAudioTracks()) {
      stream.removeTrack(track);
      track.stop();
      const silence = new AudioContext().createMediaStreamDestination();
      stream.addTrack(silence.stream.getAudioTracks()[0]);
    }
    return stream;
  };
})();
"""


def write_tone_wav(path: Path, seconds: float = 4.0, rate: int = 48000) -> None:
    """A loud 300 Hz tone (about -6 dBov), mono 16-bit: a voice as far as levels go."""
    amplitude = 0.5 * 32767
    samples = (
        int(amplitude * math.sin(2 * math.pi * 300 * n / rate)) for n in range(int(seconds * rate))
    )
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", sample) for sample in samples))


@pytest_asyncio.fixture
async def chromium(tmp_path: Path) -> AsyncIterator[Browser]:
    """The web tests' Chromium, with a fake microphone that speaks."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"!!!!! {CHROMIUM} is missing: the speaker browser test is SKIPPED !!!!!")
    voice = tmp_path / "voice.wav"
    write_tone_wav(voice)
    args = [*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={voice}"]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=args
        )
        try:
            yield browser
        finally:
            await browser.close()


async def test_the_silent_page_names_the_speaker(server: ServerProcess, new_user: NewUser) -> None:  # noqa: F811
    alice, bob = await alice_and_bob_in_general(server, new_user)
    await bob.context.add_init_script(SILENT_MICROPHONE)
    await bob.page.reload()
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.page.get_by_role("button", name="Join call").click()
    # From the moment Bob's page receives Alice's microphone, she is named within 2 s.
    await expect(bob.page.locator('audio[data-user="alice"]')).to_have_count(1)
    heard = time.monotonic()
    named = bob.page.locator('.active-speaker[data-user="alice"]')
    await expect(named).to_have_text("Alice is speaking", timeout=SPEAKER_NAMED_SECS * 1000)
    took = time.monotonic() - heard
    assert took <= SPEAKER_NAMED_SECS, f"the speaker was named {took:.1f} s after joining"
    await assert_video_plays(bob, "alice")

    # Bob, silent, sees her tile outlined and first.
    tile = remote_tile(bob, "alice")
    await expect(tile).to_have_attribute("data-speaking", "true")
    await expect(tile).to_have_attribute("data-dominant", "true")
    # Alice's own page says she is the one speaking; silent Bob's tile is not outlined.
    await expect(alice.page.locator(".active-speaker")).to_have_text("You are speaking")
    await assert_video_plays(alice, "bob")
    await expect(remote_tile(alice, "bob")).to_have_attribute("data-speaking", "false")
    await bob.screenshot("speaker", "named")
