"""Changes reach open pages without a reload: workspace events (tenant:*, channel:created),
and a message that arrives while its channel's history is still loading."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from playwright.async_api import Route, expect

from tests.web.conftest import NewUser
from tests.web.harness import (
    STEP_MS,
    BrowserUser,
    ServerProcess,
    access_token,
    alice_and_bob_in_general,
)

pytestmark = [pytest.mark.browser]

# Set on a page before the change; still there afterwards means the page never reloaded.
MARK = "window.__roomlerNotReloaded = true"
STILL_MARKED = "window.__roomlerNotReloaded === true"


async def mark(user: BrowserUser) -> None:
    await user.page.evaluate(MARK)


async def assert_not_reloaded(user: BrowserUser) -> None:
    assert await user.page.evaluate(STILL_MARKED), f"{user.username}'s page was reloaded"


async def user_id(user: BrowserUser) -> str:
    found: str = await user.page.evaluate(
        "JSON.parse(localStorage.getItem('roomler.session')).user.id"
    )
    return found


async def test_members_and_channels_appear_and_go_without_a_reload(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice = await new_user("Alice", "alice")
    bob = await new_user("Bob", "bob")
    await bob.sign_up(server.base)
    await expect(bob.page.get_by_text("you are not in any workspace yet")).to_be_visible()
    await alice.sign_up(server.base)
    await alice.create_workspace("Acme")
    # Alice's second tab, open on the workspace's member list.
    alice_tab2 = await alice.context.new_page()
    alice.watch(alice_tab2)
    await alice_tab2.goto(alice.page.url)
    await expect(alice_tab2.locator('li.member[data-user="alice"]')).to_be_visible()
    await mark(bob)

    # Alice adds Bob: his workspace list shows Acme, her other tab lists him.
    await alice.add_member("bob")
    acme = bob.page.get_by_role("link", name=re.compile("Acme"))
    await expect(acme).to_be_visible()
    await expect(bob.page.get_by_text("you are not in any workspace yet")).to_have_count(0)
    await expect(alice_tab2.locator('li.member[data-user="bob"]')).to_be_visible()
    await assert_not_reloaded(bob)

    # Bob opens Acme; Alice creates a category and a channel: both show up on his page.
    await acme.click()
    await expect(bob.page.get_by_role("heading", name="Explore channels")).to_be_visible()
    await mark(bob)
    dialog = alice.page.get_by_role("dialog", name="Create channel")
    await alice.page.get_by_role("button", name="Create channel", exact=True).click()
    await dialog.get_by_label("Name").fill("Projects")
    await dialog.get_by_role("radio", name="Category").check()
    await dialog.get_by_role("button", name="Create").click()
    await expect(dialog).to_have_count(0)
    await expect(bob.page.locator(".channel-tree .category > span")).to_have_text(["Projects"])
    await alice.page.get_by_role("button", name="Create channel", exact=True).click()
    await dialog.get_by_label("Name").fill("random")
    await dialog.get_by_role("button", name="Create").click()
    await expect(alice.channel_heading("random")).to_be_visible()
    await expect(bob.page.get_by_role("button", name="Join random")).to_be_visible()
    await assert_not_reloaded(bob)
    await bob.screenshot("live-updates", "channels")

    # Alice removes Bob: he is taken back to his (now empty) list of workspaces.
    tenant_id = re.search(r"/t/([0-9a-f]{24})", alice.page.url)
    assert tenant_id, alice.page.url
    async with httpx.AsyncClient(base_url=server.base) as http:
        response = await http.delete(
            f"/api/tenant/{tenant_id[1]}/member/{await user_id(bob)}",
            headers={"Authorization": f"Bearer {await access_token(alice)}"},
        )
    assert response.status_code == 200, response.text
    await expect(bob.page.get_by_role("heading", name="Your workspaces")).to_be_visible()
    await expect(bob.page.get_by_text("you are not in any workspace yet")).to_be_visible()
    await expect(alice_tab2.locator('li.member[data-user="bob"]')).to_have_count(0)
    await assert_not_reloaded(bob)


async def test_a_message_arriving_while_a_channel_loads_is_kept(
    server: ServerProcess, new_user: NewUser
) -> None:
    alice, bob = await alice_and_bob_in_general(server, new_user)
    # Bob reloads #general; his history request is answered by the server at once but
    # reaches his page only after Alice's next message came over his new socket.
    answered, connected, delivered = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def hold(route: Route) -> None:
        response = await route.fetch()
        answered.set()
        await delivered.wait()
        await route.fulfill(response=response)

    def on_frame(payload: str | bytes) -> None:
        text = payload if isinstance(payload, str) else payload.decode()
        if '"type":"connected"' in text:
            connected.set()
        if '"type":"message:create"' in text and "Just in time" in text:
            delivered.set()

    bob.page.on("websocket", lambda ws: ws.on("framereceived", on_frame))
    await bob.page.route(re.compile(r"/message\?per_page=50$"), hold)
    await bob.page.reload()
    await asyncio.wait_for(asyncio.gather(answered.wait(), connected.wait()), STEP_MS / 1000)

    await alice.send("Just in time")
    await asyncio.wait_for(delivered.wait(), STEP_MS / 1000)

    await expect(bob.messages("Just in time")).to_have_count(1)
