"""Call layouts that hold (issue 14 item 4): on a phone (390x844) and a desktop
(1280x800), from 1 to 25 tiles, no two tiles overlap and every name can be read (scrolled
into view, the point at its centre is the name itself, not a tile or the control bar).

The other participants are put into the page's call (`window.roomlerCall.peers`) rather
than joined by 24 browsers: what is tested is the layout of their tiles.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from tests.web.conftest import NewUser
from tests.web.harness import ServerProcess, alice_and_bob_in_general

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
COUNTS = (1, 2, 3, 4, 5, 9, 16, 17, 25)

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

# Per tile: its box, its caption's box, and whether the caption's centre, once scrolled
# into view, hits the caption itself.
MEASURE = """
() => {
  const grid = document.querySelector('.video-grid');
  const origin = grid.getBoundingClientRect();
  const tiles = [...grid.querySelectorAll('.tile')];
  // Boxes in the grid's own coordinates (whatever it is scrolled to), all at once.
  const boxes = tiles.map((tile) => {
    const box = tile.getBoundingClientRect();
    return [box.x - origin.x, box.y - origin.y + grid.scrollTop, box.width, box.height];
  });
  return tiles.map((tile, index) => {
    const caption = tile.querySelector('figcaption');
    caption.scrollIntoView({block: 'nearest'});
    const text = caption.getBoundingClientRect();
    const hit = document.elementFromPoint(text.x + text.width / 2, text.y + text.height / 2);
    return {
      label: caption.textContent,
      tile: boxes[index],
      readable: text.width > 0 && caption.contains(hit),
    };
  });
}
"""


def overlap(a: list[float], b: list[float]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw - 0.5 and bx < ax + aw - 0.5 and ay < by + bh - 0.5 and by < ay + ah - 0.5


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
async def test_tiles_never_overlap_and_names_stay_readable(
    server: ServerProcess, new_user: NewUser, viewport: str
) -> None:
    alice, _bob = await alice_and_bob_in_general(server, new_user)
    await alice.page.set_viewport_size(VIEWPORTS[viewport])
    await alice.page.get_by_role("button", name="Start call").click()
    await expect(alice.page.locator('.tile[data-local="true"]')).to_have_count(1)
    await expect(alice.page.get_by_role("button", name="Leave call")).to_be_visible()
    for count in COUNTS:
        await alice.page.evaluate(SET_PEERS, count)
        await expect(alice.page.locator(".video-grid .tile")).to_have_count(count)
        tiles: list[dict[str, Any]] = await alice.page.evaluate(MEASURE)
        for index, tile in enumerate(tiles):
            assert tile["readable"], f"{viewport}, {count} tiles: {tile['label']!r} is covered"
            for other in tiles[index + 1 :]:
                assert not overlap(tile["tile"], other["tile"]), (
                    f"{viewport}, {count} tiles: {tile['label']!r} and {other['label']!r} overlap"
                )
        if count in (4, 25):
            await alice.screenshot("layout", f"{viewport}-{count}")
