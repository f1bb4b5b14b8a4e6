"""A profile change pushed live (`user:updated`): a new name or picture reaches every tab of
everyone who shares a workspace with the user, their own tabs included, and nobody else.

Alice (two tabs) and Carol share a workspace; Eve is in another one. The change goes
through the real REST API; the events are read on real WebSocket connections.
"""

from __future__ import annotations

import io

import httpx
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.realtime.conftest import LiveServer, add_tenant, drain_all, open_client, register


async def test_a_new_name_and_picture_reach_workspace_peers_on_every_tab(
    server: LiveServer, http: httpx.AsyncClient, db: AsyncEngine
) -> None:
    alice, carol, eve = [await register(http, n) for n in ("alice", "carol", "eve")]
    await add_tenant(db, alice, carol)
    await add_tenant(db, eve)
    a1, a2, c1, e1 = [await open_client(server, u) for u in (alice, alice, carol, eve)]
    await drain_all(a1, a2, c1, e1)  # presence events of the connects

    renamed = await http.put(
        "/api/auth/me", headers=alice.headers, json={"display_name": "Alice W."}
    )
    assert renamed.status_code == 200, renamed.text
    profile = {k: v for k, v in renamed.json().items() if k != "email"}
    for client in (a1, a2, c1):
        assert await client.drain() == [{"type": "user:updated", "data": {"user": profile}}]
    assert await e1.drain() == []

    out = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(out, "PNG")
    pictured = await http.put(
        "/api/auth/me/avatar",
        headers={**alice.headers, "content-type": "image/png"},
        content=out.getvalue(),
    )
    assert pictured.status_code == 200, pictured.text
    avatar = pictured.json()["avatar"]
    for client in (a1, a2, c1):
        [event] = await client.drain()
        assert event["type"] == "user:updated"
        assert event["data"]["user"]["avatar"] == avatar
        assert event["data"]["user"]["display_name"] == "Alice W."
        assert "email" not in event["data"]["user"]
    assert await e1.drain() == []
    # Carol's browser may fetch the picture the event names.
    assert (await http.get(avatar, headers=carol.headers)).status_code == 200
