"""Archiving channels (issue 18 item 10), on both databases: who may archive and
unarchive (whoever may rename or delete the channel), what an archived channel refuses
(every write, 409 naming the archive) and what it still answers (history, threads,
pins, search, files), and the `channel:updated` that tells whoever sees it."""

from __future__ import annotations

from typing import Any

import httpx

from roomler.api.channels import ARCHIVED_MESSAGE
from tests.api.test_messages import RecordingPublisher
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_roles import workspace
from tests.conftest import Account


class Channel:
    """One channel of the workspace, driven through the REST API."""

    def __init__(self, client: httpx.AsyncClient, tid: str, channel: dict[str, Any]) -> None:
        self.client = client
        self.tid = tid
        self.id: str = channel["id"]
        self.base = f"/api/tenant/{tid}/channel/{self.id}"

    async def call(
        self, who: Account, method: str, path: str = "", **kwargs: Any
    ) -> httpx.Response:
        return await self.client.request(method, self.base + path, headers=who.headers, **kwargs)

    async def archive(self, who: Account) -> httpx.Response:
        return await self.call(who, "PUT", "/archive")

    async def unarchive(self, who: Account) -> httpx.Response:
        return await self.call(who, "DELETE", "/archive")

    async def post(self, who: Account, content: str, **extra: Any) -> httpx.Response:
        return await self.call(who, "POST", "/message", json={"content": content, **extra})


async def open_channel(
    client: httpx.AsyncClient, tid: str, creator: Account, members: list[Account]
) -> Channel:
    response = await client.post(
        f"/api/tenant/{tid}/channel", headers=creator.headers, json={"name": "launch"}
    )
    assert response.status_code == 201, response.text
    channel = Channel(client, tid, response.json())
    for member in members:
        joined = await channel.call(member, "POST", "/join")
        assert joined.status_code == 200, joined.text
    return channel


def refused_as_archived(response: httpx.Response) -> bool:
    return response.status_code == 409 and response.json()["message"] == ARCHIVED_MESSAGE


async def test_the_creator_and_owners_and_admins_archive_and_unarchive_members_do_not(
    client: httpx.AsyncClient, make_user: Any, recorder: RecordingPublisher
) -> None:
    tid, (owner, admin, alice, bob) = await workspace(client, make_user)
    by_alice = await open_channel(client, tid, alice, [bob])
    by_owner = await open_channel_named(client, tid, owner, "plans")

    # A member who did not create the channel may not archive it (the rename rule).
    refused = await by_alice.archive(bob)
    assert refused.status_code == 403
    assert refused.json()["message"] == (
        "Only the channel's creator or a tenant owner/admin may do this"
    )
    assert (await by_owner.archive(alice)).status_code == 403

    archived = await by_alice.archive(alice)  # its creator
    assert archived.status_code == 200, archived.text
    body = archived.json()
    assert body["archived"] is True and body["archived_at"].endswith("Z")
    assert body["is_member"] is True
    assert (await by_alice.unarchive(bob)).status_code == 403
    assert (await by_alice.unarchive(admin)).json()["archived"] is False  # an admin
    assert (await by_owner.archive(admin)).json()["archived"] is True
    assert (await by_owner.unarchive(owner)).json()["archived_at"] is None

    # The channel's viewers hear each change: every member of the tenant (public).
    updates = [p for p in recorder.published if p.event_type == "channel:updated"]
    assert [(p.data["channel_id"], p.data["archived"]) for p in updates] == [
        (by_alice.id, True),
        (by_alice.id, False),
        (by_owner.id, True),
        (by_owner.id, False),
    ]
    everyone = {a.id for a in (owner, admin, alice, bob)}
    assert all(set(p.user_ids) == everyone for p in updates)
    assert updates[0].data["archived_at"] == body["archived_at"]
    assert updates[0].data["paths"] == {by_alice.id: "launch"}

    # Asking for what already is changes nothing and tells nobody.
    assert (await by_owner.unarchive(owner)).status_code == 200
    await by_owner.archive(owner)
    again = await by_owner.archive(owner)
    assert again.status_code == 200 and again.json()["archived"] is True
    assert len([p for p in recorder.published if p.event_type == "channel:updated"]) == 5


async def open_channel_named(
    client: httpx.AsyncClient, tid: str, creator: Account, name: str
) -> Channel:
    response = await client.post(
        f"/api/tenant/{tid}/channel", headers=creator.headers, json={"name": name}
    )
    assert response.status_code == 201, response.text
    return Channel(client, tid, response.json())


async def test_an_archived_channel_refuses_every_write_and_answers_every_read(
    client: httpx.AsyncClient, make_user: Any, recorder: RecordingPublisher
) -> None:
    tid, (owner, admin, alice, bob) = await workspace(client, make_user)
    channel = await open_channel(client, tid, owner, [alice, bob])
    root = (await channel.post(alice, "the plan is ready")).json()
    reply = (await channel.post(bob, "looks good", thread_id=root["id"])).json()
    assert (await channel.call(alice, "PUT", f"/message/{root['id']}/pin")).status_code == 200
    thumbs = "/message/{}/reaction/%F0%9F%91%8D".format(root["id"])
    assert (await channel.call(bob, "PUT", thumbs)).status_code == 200
    uploaded = await channel.call(
        alice, "POST", "/file", params={"name": "plan.txt"}, content=b"step one"
    )
    assert uploaded.status_code == 201, uploaded.text
    attached = await channel.post(alice, "", attachment_ids=[uploaded.json()["id"]])
    assert attached.status_code == 201, attached.text
    file_url = f"/file/{uploaded.json()['id']}"
    assert (await channel.archive(owner)).status_code == 200
    published_before = len(recorder.published)

    writes = [
        (alice, "POST", "/message", {"json": {"content": "one more thing"}}),
        (bob, "POST", "/message", {"json": {"content": "a reply", "thread_id": root["id"]}}),
        (alice, "PUT", f"/message/{root['id']}", {"json": {"content": "edited"}}),
        (alice, "DELETE", f"/message/{root['id']}", {}),
        (owner, "DELETE", f"/message/{reply['id']}", {}),  # an owner too
        (bob, "PUT", f"/message/{reply['id']}/pin", {}),
        (alice, "DELETE", f"/message/{root['id']}/pin", {}),
        (alice, "PUT", thumbs, {}),
        (bob, "DELETE", thumbs, {}),
        (alice, "POST", "/file", {"params": {"name": "b.txt"}, "content": b"x"}),
        (owner, "PUT", "", {"json": {"name": "renamed"}}),
        (owner, "POST", "/member", {"json": {"user_id": admin.id}}),
        (admin, "POST", "/join", {}),  # readable without joining, not joinable
    ]
    for who, method, path, kwargs in writes:
        response = await channel.call(who, method, path, **kwargs)
        assert refused_as_archived(response), (method, path, response.status_code, response.text)
    conference = await client.post(
        f"/api/tenant/{tid}/conference",
        headers=alice.headers,
        json={"subject": "sync", "channel_id": channel.id},
    )
    assert refused_as_archived(conference), conference.text
    # Refused writes tell nobody anything.
    assert len(recorder.published) == published_before

    # Everything stays readable, for members and for a tenant member who never joined.
    for reader in (alice, admin):
        history = await channel.call(reader, "GET", "/message")
        assert [m["content"] for m in history.json()["items"]] == ["", "the plan is ready"]
        thread = await channel.call(reader, "GET", f"/message/{root['id']}/thread")
        assert [m["content"] for m in thread.json()] == ["looks good"]
        pins = await channel.call(reader, "GET", "/pins")
        assert [m["id"] for m in pins.json()] == [root["id"]]
        download = await channel.call(reader, "GET", file_url)
        assert download.status_code == 200 and download.content == b"step one"
    # Search covers the channels one belongs to: an archived one is still searched.
    found = await client.get(
        f"/api/tenant/{tid}/search", headers=alice.headers, params={"q": "plan"}
    )
    assert found.status_code == 200, found.text
    assert root["id"] in {hit["id"] for hit in found.json()["messages"]}
    listed = await client.get(f"/api/tenant/{tid}/channel", headers=admin.headers)
    [shown] = [c for c in listed.json() if c["id"] == channel.id]
    assert shown["archived"] is True and shown["is_member"] is False
    # Leaving and per-user settings are the reader's own: still allowed.
    assert (await channel.call(bob, "POST", "/leave")).status_code == 200
    assert (await channel.call(alice, "PUT", "/mute")).status_code == 200


async def test_unarchiving_restores_posting_and_a_direct_conversation_is_never_archived(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    tid, (owner, _admin, alice, bob) = await workspace(client, make_user)
    channel = await open_channel(client, tid, owner, [alice])
    await channel.archive(owner)
    assert refused_as_archived(await channel.post(alice, "hello?"))
    assert (await channel.unarchive(owner)).status_code == 200
    posted = await channel.post(alice, "hello again")
    assert posted.status_code == 201, posted.text
    assert (await channel.call(bob, "POST", "/join")).status_code == 200
    assert (await channel.post(bob, "me too")).status_code == 201

    dm = await client.post(
        f"/api/tenant/{tid}/dm", headers=alice.headers, json={"user_ids": [bob.id]}
    )
    assert dm.status_code in (200, 201), dm.text
    direct = Channel(client, tid, dm.json())
    refused = await direct.archive(alice)
    assert refused.status_code == 403
    assert refused.json()["message"] == "A direct conversation cannot be archived"
