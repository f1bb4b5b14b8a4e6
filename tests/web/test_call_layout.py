"""Call layouts that hold (issue 14 item 4): on a phone (390x844) and a desktop
(1280x800), with 1 to 25 participants, in the grid and in the speaker view, no two tiles
overlap, every tile lies inside the stage (above the control bar, below the bar with the
page controls), every name can be read (the point at its centre is the name itself, not
a tile or a control), and every participant is on some page; a screen share is the large
tile of the spotlight, the cameras in a strip.

What is real and what is not: Alice's page is the real web client in a real call (her
camera, the SFU); the other participants 2..25 are synthetic -- they are put into her
page's call as room members without media (`window.roomlerCall.peers`, which the page
exposes in debug mode), so their tiles are avatars laid out by the same code as any
other. 24 more browsers are too much for this machine and would test nothing more about
where tiles go. For the spotlight, Bob is a second real page that joins with his camera
and shares his screen, with the synthetic participants beside him.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general, enable_debug

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
MAX_PARTICIPANTS = 25
MAX_PAGE = 16  # a grid page holds at most this many tiles
LARGE = re.compile(r"\blarge\b")
MIN_TILE = (120, 70)  # smaller is not a usable tile (lib/layout.ts keeps 128x80)

SET_PEERS = """
(count) => {
  const call = window.roomlerCall;
  const peers = new Map();
  for (let i = 1; i < count; i++) {
    const id = String(i).padStart(24, 'a');
    peers.set('c' + i, {connectionId: 'c' + i, userId: id, displayName: 'Participant ' + i});
  }
  call.peers.value = peers;
}
"""

# The tiles on the stage: boxes (viewport coordinates), whether each name is readable,
# and the boxes of the stage, its bar and the control bar.
MEASURE = """
async () => {
  // Once the stage has taken its new size (a resize is laid out on the next frame).
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const rect = (el) => {
    const b = el.getBoundingClientRect();
    return [b.x, b.y, b.width, b.height];
  };
  const tiles = [...document.querySelectorAll('.stage .tile')].map((tile) => {
    const caption = tile.querySelector('figcaption');
    const text = caption.getBoundingClientRect();
    const hit = document.elementFromPoint(text.x + text.width / 2, text.y + text.height / 2);
    return {
      label: caption.textContent,
      box: rect(tile),
      caption: rect(caption),
      readable: text.width > 0 && caption.contains(hit),
      large: tile.classList.contains('large'),
      screen: tile.classList.contains('screen'),
    };
  });
  const scroller = document.scrollingElement;
  return {
    tiles,
    stage: rect(document.querySelector('.stage')),
    bar: rect(document.querySelector('.stage-bar')),
    controls: rect(document.querySelector('.call-controls')),
    layout: document.querySelector('.stage').dataset.layout,
    scrolls: scroller.scrollHeight > scroller.clientHeight + 1,
  };
}
"""


def overlap(a: list[float], b: list[float]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw - 0.5 and bx < ax + aw - 0.5 and ay < by + bh - 0.5 and by < ay + ah - 0.5


def inside(inner: list[float], outer: list[float]) -> bool:
    ix, iy, iw, ih = inner
    ox, oy, ow, oh = outer
    fits_x = ix >= ox - 0.5 and ix + iw <= ox + ow + 0.5
    return fits_x and iy >= oy - 0.5 and iy + ih <= oy + oh + 0.5


def check_page(where: str, measured: dict[str, Any]) -> list[str]:
    """Asserts the page holds; returns the names on it."""
    tiles = measured["tiles"]
    assert not measured["scrolls"], f"{where}: the page scrolls"
    stage, bar, controls = measured["stage"], measured["bar"], measured["controls"]
    assert stage[1] + stage[3] <= controls[1] + 0.5, f"{where}: the stage reaches the controls"
    assert stage[1] >= bar[1] + bar[3] - 0.5, f"{where}: the stage is under its bar"
    for index, tile in enumerate(tiles):
        name = tile["label"]
        assert inside(tile["box"], stage), f"{where}: {name!r} is outside the stage {tile}"
        assert tile["box"][2] >= MIN_TILE[0] and tile["box"][3] >= MIN_TILE[1], (
            f"{where}: {name!r} is too small: {tile['box']}"
        )
        assert inside(tile["caption"], tile["box"]), f"{where}: {name!r} is cut off"
        assert tile["readable"], f"{where}: {name!r} is covered"
        for other in tiles[index + 1 :]:
            assert not overlap(tile["box"], other["box"]), (
                f"{where}: {name!r} and {other['label']!r} overlap"
            )
    return [tile["label"] for tile in tiles]


async def every_page(page: Page, where: str) -> list[list[str]]:
    """Checks each page of the stage, from the first; the names on each."""
    pages: list[list[str]] = []
    previous = page.get_by_role("button", name="Previous page")
    while await previous.count() and await previous.is_enabled():
        await previous.click()
    while True:
        measured = await page.evaluate(MEASURE)
        pages.append(check_page(f"{where}, page {len(pages) + 1}", measured))
        following = page.get_by_role("button", name="Next page")
        if not await following.count() or not await following.is_enabled():
            return pages
        await following.click()
        await expect(page.locator(".page-count")).to_have_text(
            f"Page {len(pages) + 1} of {await page_total(page)}"
        )


async def page_total(page: Page) -> str:
    text = await page.locator(".page-count").text_content() or ""
    return text.rsplit(" ", 1)[-1]


def participants(count: int) -> set[str]:
    return {"Alice (you)"} | {f"Participant {i}" for i in range(1, count)}


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_layouts_hold_from_1_to_25_participants(
    server: ServerProcess, new_user: NewUser, viewport: str
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    page = alice.page
    await page.set_viewport_size(VIEWPORTS[viewport])
    await page.get_by_role("button", name="Start call").click()
    await expect(page.locator('.tile[data-local="true"]')).to_have_count(1)
    # A production page does not expose the call; in debug mode the tests get it.
    assert await page.evaluate("typeof window.roomlerCall") == "undefined"
    await enable_debug(alice.context)
    await page.reload()
    await expect(page.get_by_role("button", name="Leave call")).to_be_visible()
    await page.wait_for_function("window.roomlerCall?.phase.value === 'joined'")

    for layout in ("Grid", "Speaker"):
        await page.get_by_label("Layout").select_option(label=layout)
        for count in range(1, MAX_PARTICIPANTS + 1):
            await page.evaluate(SET_PEERS, count)
            await expect(page.locator(".stage")).to_have_attribute("data-count", str(count))
            where = f"{viewport}, {layout}, {count} participants"
            pages = await every_page(page, where)
            names = [name for shown in pages for name in shown]
            assert set(names) == participants(count), f"{where}: {pages}"
            if layout == "Grid":
                assert len(names) == count, f"{where}: a tile on two pages: {pages}"
                assert all(len(shown) <= MAX_PAGE for shown in pages), where
                if count > MAX_PAGE:
                    assert len(pages) > 1, f"{where}: no second page"
            else:
                # Speaker view: the large tile on every page, the others smaller.
                large = await page.locator(".tile.large").count()
                assert large == 1, f"{where}: {large} large tiles"
            if count in (4, 25):
                await alice.screenshot("layout", f"{viewport}-{layout.lower()}-{count}")

    # Bob joins for real and shares his screen: in Auto it is the spotlight, large, with
    # the cameras (and avatars) in a strip.
    await page.get_by_label("Layout").select_option(value="auto")
    await bob.page.get_by_role("button", name="Join call").click()
    await expect(bob.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await bob.page.get_by_role("button", name="Share screen").click()
    screen = page.locator('.tile.screen[data-user="bob"]')
    await expect(screen).to_have_class(LARGE)
    await expect(page.locator(".stage")).to_have_attribute("data-layout", "spotlight")
    for count in (1, 4, 12, MAX_PARTICIPANTS - 1):
        await page.evaluate(SET_PEERS, count)  # Alice, Bob and count - 1 synthetic
        await expect(page.locator(".stage")).to_have_attribute("data-count", str(count + 2))
        where = f"{viewport}, spotlight, {count + 1} participants and a screen"
        pages = await every_page(page, where)
        await expect(screen).to_have_class(LARGE)  # on every page
        names = {name for shown in pages for name in shown}
        assert names == participants(count) | {"Bob", "Bob (screen)"}, f"{where}: {pages}"

    # The README's call screenshots (ROOMLER_README_SCREENSHOTS=1): four people and a
    # shared screen, without the debug overlay.
    await page.evaluate(SET_PEERS, 3)
    await page.add_style_tag(content=".tile-debug { display: none; }")
    await alice.screenshot("layout", f"{viewport}-spotlight", readme=f"call-{viewport}")
