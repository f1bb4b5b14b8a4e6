"""Archiving a channel, live (issue 18 item 10): `channel:updated` with `archived` reaches
whoever sees the channel on every tab, and nobody else; in an archived channel a
`typing:start` is refused to the sender alone and a post is refused over REST, with
nothing sent to anyone; unarchived, both work again. Real server, real WebSockets."""

from __future__ import annotations

from typing import Any

from tests.realtime.test_workspace_events import Workspace
from tests.realtime.test_workspace_events import space as space  # noqa: F401 (fixture)


def archive_event(space: Workspace, channel: dict[str, Any], archived: bool) -> dict[str, Any]:
    return {
        "type": "channel:updated",
        "data": {
            "tenant_id": space.tenant_id,
            "channel_id": channel["id"],
            "name": channel["name"],
            "purpose": channel["purpose"],
            "is_private": channel["is_private"],
            "archived": archived,
            "archived_at": channel["archived_at"],
            "paths": {channel["id"]: channel["path"]},
        },
    }


async def test_archiving_tells_every_tab_of_whoever_sees_the_channel(space: Workspace) -> None:
    public = await space.call(space.carol, "POST", "/channel", {"name": "launch"})
    private = await space.call(
        space.alice, "POST", "/channel", {"name": "board", "is_private": True}
    )
    for client in space.everyone:
        await client.drain()  # the channel:created events

    # Alice (an owner) archives Carol's public channel: every member of the tenant hears.
    archived = await space.call(space.alice, "PUT", f"/channel/{public['id']}/archive")
    assert archived["archived"] is True
    event = archive_event(space, archived, True)
    for client in (space.a1, space.a2, space.c1):
        assert await client.drain() == [event], client
    # Bob is outside the workspace, Eve in another one.
    assert await space.b1.drain() == [] and await space.e1.drain() == []

    # A private channel: its members only.
    hidden = await space.call(space.alice, "PUT", f"/channel/{private['id']}/archive")
    for client in (space.a1, space.a2):
        assert await client.drain() == [archive_event(space, hidden, True)]
    for client in (space.b1, space.c1, space.e1):
        assert await client.drain() == []

    restored = await space.call(space.carol, "DELETE", f"/channel/{public['id']}/archive")
    assert restored["archived"] is False and restored["archived_at"] is None
    for client in (space.a1, space.a2, space.c1):
        assert await client.drain() == [archive_event(space, restored, False)]


async def test_nobody_types_or_posts_in_an_archived_channel_until_it_is_unarchived(
    space: Workspace,
) -> None:
    channel = await space.call(space.alice, "POST", "/channel", {"name": "launch"})
    await space.call(space.carol, "POST", f"/channel/{channel['id']}/join")
    await space.call(space.alice, "PUT", f"/channel/{channel['id']}/archive")
    for client in space.everyone:
        await client.drain()

    await space.c1.send("typing:start", {"channel_id": channel["id"]}, request_id="t1")
    error = await space.c1.expect("error")
    assert error["request_id"] == "t1"
    assert error["data"] == {
        "code": "channel_archived",
        "message": "The channel is archived: it is read-only until it is unarchived",
        "request_type": "typing:start",
    }
    posted = await space.http.post(
        f"/api/tenant/{space.tenant_id}/channel/{channel['id']}/message",
        json={"content": "anyone?"},
        headers=space.carol.headers,
    )
    assert posted.status_code == 409
    assert posted.json()["message"] == (
        "The channel is archived: it is read-only until it is unarchived"
    )
    # The refusals went to Carol's connection alone; nobody heard anything.
    for client in space.everyone:
        assert await client.drain() == [], client

    await space.call(space.alice, "DELETE", f"/channel/{channel['id']}/archive")
    for client in space.everyone:
        await client.drain()
    await space.c1.send("typing:start", {"channel_id": channel["id"]})
    assert await space.c1.drain() == []  # handled: its events are queued for the others
    typing = {
        "type": "typing:start",
        "data": {"channel_id": channel["id"], "user_id": space.carol.id},
    }
    for client in (space.a1, space.a2):
        assert await client.drain() == [typing]
    message = await space.call(
        space.carol, "POST", f"/channel/{channel['id']}/message", {"content": "back again"}
    )
    for client in (space.a1, space.a2):
        assert (await client.expect("message:create"))["data"] == message
