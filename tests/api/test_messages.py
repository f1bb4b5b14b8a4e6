from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from roomler.db.models import Message
from tests.api.test_channels import add_to_tenant, create_channel, make_tenant
from tests.conftest import Account


@dataclass
class Published:
    user_ids: list[str]
    event_type: str
    data: dict[str, Any]
    exclude_user: str | None
    exclude_connection: str | None
    stored: bool  # whether the message was visible to another session at publish time


@dataclass
class RecordingPublisher:
    """Records what the API hands to the real-time layer."""

    app: Any
    published: list[Published] = field(default_factory=list)
    posted: list[tuple[str, str]] = field(default_factory=list)

    async def publish(
        self,
        user_ids: Iterable[str],
        event_type: str,
        data: dict[str, Any],
        *,
        exclude_user: str | None = None,
        exclude_connection: str | None = None,
    ) -> None:
        message_id = (
            data.get("id")
            or data.get("message_id")
            or (data.get("message") or data.get("channel") or {}).get("id")
            or (data.get("notification") or {}).get("message_id")
        )
        async with self.app.state.ctx.sessions() as session:
            stored = await session.get(Message, message_id) if message_id else None
            committed = stored is not None and (
                stored.deleted_at is not None if event_type == "message:delete" else True
            )
        self.published.append(
            Published(
                sorted(user_ids), event_type, data, exclude_user, exclude_connection, committed
            )
        )

    async def message_posted(self, channel_id: str, author_id: str) -> None:
        self.posted.append((channel_id, author_id))


@dataclass
class Room:
    """A tenant with an owner, an admin, two members in `general`, one member outside it."""

    tid: str
    cid: str
    owner: Account
    admin: Account
    alice: Account
    bob: Account
    carol: Account

    @property
    def url(self) -> str:
        return f"/api/tenant/{self.tid}/channel/{self.cid}/message"


@pytest.fixture
async def room(client: httpx.AsyncClient, app: Any, make_user: Any) -> Room:
    owner, tid = await make_tenant(app, make_user, "olivia", "acme")
    admin, alice, bob, carol = [await make_user(n) for n in ("adam", "alice", "bob", "carol")]
    await add_to_tenant(app, tid, admin, role="admin")
    for account in (alice, bob, carol):
        await add_to_tenant(app, tid, account)
    general = await create_channel(client, owner, tid, "general")
    for account in (alice, bob):
        join = await client.post(
            f"/api/tenant/{tid}/channel/{general['id']}/join", headers=account.headers
        )
        assert join.status_code == 200
    return Room(tid, general["id"], owner, admin, alice, bob, carol)


@pytest.fixture
def recorder(app: Any) -> RecordingPublisher:
    publisher = RecordingPublisher(app)
    app.state.ctx.events = publisher
    return publisher


async def post(
    client: httpx.AsyncClient, room: Room, who: Account, content: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(room.url, headers=who.headers, json={"content": content, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def page(
    client: httpx.AsyncClient, room: Room, who: Account, **params: Any
) -> dict[str, Any]:
    response = await client.get(room.url, headers=who.headers, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# --- posting -------------------------------------------------------------------------------


async def test_post_returns_the_full_message(client: httpx.AsyncClient, room: Room) -> None:
    response = await client.post(
        room.url, headers=room.alice.headers, json={"content": "  hello *world*  ", "nonce": "n-1"}
    )
    assert response.status_code == 201
    message = response.json()
    assert set(message) == {
        "id", "channel_id", "author_id", "content", "message_type", "thread_id",
        "referenced_message_id", "reply_count", "last_reply_at", "is_edited", "is_pinned",
        "pinned_at", "pinned_by", "nonce",
        "reactions", "attachments", "created_at",
        "updated_at",
    }  # fmt: skip
    assert len(message["id"]) == 24 and int(message["id"], 16) >= 0
    assert message["channel_id"] == room.cid and message["author_id"] == room.alice.id
    assert message["content"] == "  hello *world*  " and message["nonce"] == "n-1"
    assert message["message_type"] == "default"
    assert message["thread_id"] is None and message["referenced_message_id"] is None
    assert message["is_edited"] is False and message["is_pinned"] is False
    assert message["created_at"] == message["updated_at"] and message["created_at"].endswith("Z")
    assert (await page(client, room, room.bob))["items"] == [message]


async def test_invalid_message_bodies_are_422(client: httpx.AsyncClient, room: Room) -> None:
    for body in [
        {"content": ""},
        {"content": " \n\t "},
        {"content": "x" * 10001},
        {"content": "ok", "nonce": "n" * 65},
        {"content": 5},
        {},
    ]:
        response = await client.post(room.url, headers=room.alice.headers, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"] == "validation"
    assert (await page(client, room, room.alice))["total"] == 0
    longest = await post(client, room, room.alice, "x" * 10000, nonce="n" * 64)
    assert len(longest["content"]) == 10000


async def test_a_refused_length_says_the_limit_in_characters(
    client: httpx.AsyncClient, room: Room
) -> None:
    # Characters as people count them: 10001 emoji are 20002 UTF-16 units, still 10001.
    for content, length in [("x" * 10001, 10001), ("😀" * 10001, 10001)]:
        response = await client.post(
            room.url, headers=room.alice.headers, json={"content": content}
        )
        assert response.status_code == 422
        assert response.json() == {
            "error": "validation",
            "message": f"content: must be at most 10000 characters long, not {length}",
        }
    assert len((await post(client, room, room.alice, "😀" * 10000))["content"]) == 10000
    empty = await client.post(room.url, headers=room.alice.headers, json={"content": ""})
    assert empty.json()["message"] == "content: must not be empty"
    nonce = await client.post(
        room.url, headers=room.alice.headers, json={"content": "hi", "nonce": "n" * 65}
    )
    assert nonce.json()["message"] == "nonce: must be at most 64 characters long, not 65"
    mid = (await post(client, room, room.alice, "short"))["id"]
    edit = await client.put(
        f"{room.url}/{mid}", headers=room.alice.headers, json={"content": "y" * 12000}
    )
    assert edit.status_code == 422
    assert edit.json()["message"] == "content: must be at most 10000 characters long, not 12000"


async def test_reading_needs_visibility_and_writing_needs_membership(
    client: httpx.AsyncClient, room: Room
) -> None:
    first = await post(client, room, room.alice, "hi")
    # carol is in the tenant but not in the channel: she may read, not write.
    assert [m["id"] for m in (await page(client, room, room.carol))["items"]] == [first["id"]]
    refused = await client.post(room.url, headers=room.carol.headers, json={"content": "me too"})
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    join = f"/api/tenant/{room.tid}/channel/{room.cid}/join"
    assert (await client.post(join, headers=room.carol.headers)).status_code == 200
    await post(client, room, room.carol, "me too")
    leave = f"/api/tenant/{room.tid}/channel/{room.cid}/leave"
    assert (await client.post(leave, headers=room.alice.headers)).status_code == 200
    edit = await client.put(
        f"{room.url}/{first['id']}", headers=room.alice.headers, json={"content": "edited"}
    )
    assert edit.status_code == 403
    assert (await client.get(room.url)).status_code == 401


async def test_private_channel_messages_are_invisible_to_outsiders(
    client: httpx.AsyncClient, room: Room
) -> None:
    secret = await create_channel(client, room.alice, room.tid, "secret", is_private=True)
    url = f"/api/tenant/{room.tid}/channel/{secret['id']}/message"
    posted = await client.post(url, headers=room.alice.headers, json={"content": "psst"})
    assert posted.status_code == 201
    mid = posted.json()["id"]
    for method, target in [
        ("GET", url), ("POST", url), ("PUT", f"{url}/{mid}"), ("DELETE", f"{url}/{mid}"),
        ("GET", f"{url}/{mid}/thread"),
    ]:  # fmt: skip
        response = await client.request(
            method, target, headers=room.bob.headers, json={"content": "x"}
        )
        assert response.status_code == 404, (method, target)


# --- listing -------------------------------------------------------------------------------


async def test_history_is_newest_first_top_level_and_live_only(
    client: httpx.AsyncClient, room: Room
) -> None:
    first = await post(client, room, room.alice, "one")
    second = await post(client, room, room.bob, "two")
    doomed = await post(client, room, room.bob, "three")
    await post(client, room, room.alice, "reply", thread_id=first["id"])
    quoting = await post(client, room, room.alice, "quoting", referenced_message_id=second["id"])
    deleted = await client.delete(f"{room.url}/{doomed['id']}", headers=room.bob.headers)
    assert deleted.status_code == 200
    history = await page(client, room, room.bob)
    assert [m["content"] for m in history["items"]] == ["quoting", "two", "one"]
    assert history["total"] == 3 and history["items"][0] == quoting


async def test_pages_and_before_cursor_walk_back_through_history(
    client: httpx.AsyncClient, room: Room
) -> None:
    posted = [await post(client, room, room.alice, f"m{i}") for i in range(7)]
    newest_first = [m["id"] for m in reversed(posted)]
    first = await page(client, room, room.bob, per_page=3)
    assert [m["id"] for m in first["items"]] == newest_first[:3]
    assert (first["total"], first["total_pages"]) == (7, 3)
    second = await page(client, room, room.bob, per_page=3, page=2)
    assert [m["id"] for m in second["items"]] == newest_first[3:6]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"per_page": 3, **({"before": cursor} if cursor else {})}
        chunk = await page(client, room, room.bob, **params)
        if not chunk["items"]:
            break
        seen.extend(m["id"] for m in chunk["items"])
        cursor = chunk["items"][-1]["id"]
        assert len(seen) <= 7
    assert seen == newest_first
    older = await page(client, room, room.bob, before=posted[3]["id"])
    assert [m["content"] for m in older["items"]] == ["m2", "m1", "m0"] and older["total"] == 3
    # A cursor that has been deleted since still pages on.
    await client.delete(f"{room.url}/{posted[3]['id']}", headers=room.alice.headers)
    still = await page(client, room, room.bob, before=posted[3]["id"])
    assert [m["content"] for m in still["items"]] == ["m2", "m1", "m0"]


async def test_before_must_be_a_message_of_this_channel(
    client: httpx.AsyncClient, room: Room
) -> None:
    elsewhere = await create_channel(client, room.owner, room.tid, "elsewhere")
    other_url = f"/api/tenant/{room.tid}/channel/{elsewhere['id']}/message"
    other = await client.post(other_url, headers=room.owner.headers, json={"content": "x"})
    for before in [other.json()["id"], "0" * 24, "nope"]:
        response = await client.get(room.url, headers=room.bob.headers, params={"before": before})
        assert response.status_code == 404, before


# --- threads and replies -------------------------------------------------------------------


async def test_thread_replies_are_listed_oldest_first(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "root")
    replies = [
        await post(client, room, who, f"r{i}", thread_id=root["id"])
        for i, who in enumerate([room.bob, room.alice, room.bob])
    ]
    assert {r["message_type"] for r in replies} == {"reply"}
    assert {r["thread_id"] for r in replies} == {root["id"]}
    await client.delete(f"{room.url}/{replies[1]['id']}", headers=room.alice.headers)
    response = await client.get(f"{room.url}/{root['id']}/thread", headers=room.carol.headers)
    assert response.status_code == 200
    assert [m["content"] for m in response.json()] == ["r0", "r2"]
    lonely = await post(client, room, room.alice, "lonely")
    empty = await client.get(f"{room.url}/{lonely['id']}/thread", headers=room.bob.headers)
    assert empty.status_code == 200 and empty.json() == []
    for mid in ["0" * 24, "bad"]:
        missing = await client.get(f"{room.url}/{mid}/thread", headers=room.bob.headers)
        assert missing.status_code == 404


async def test_reply_targets_must_be_live_messages_of_the_same_channel(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "root")
    reply = await post(client, room, room.bob, "reply", thread_id=root["id"])
    quoted = await post(client, room, room.bob, "quote", referenced_message_id=reply["id"])
    assert quoted["message_type"] == "reply" and quoted["referenced_message_id"] == reply["id"]
    assert quoted["thread_id"] is None
    gone = await post(client, room, room.bob, "gone")
    await client.delete(f"{room.url}/{gone['id']}", headers=room.bob.headers)
    elsewhere = await create_channel(client, room.owner, room.tid, "elsewhere")
    foreign = await client.post(
        f"/api/tenant/{room.tid}/channel/{elsewhere['id']}/message",
        headers=room.owner.headers,
        json={"content": "there"},
    )
    for field_name in ("thread_id", "referenced_message_id"):
        for target in [gone["id"], foreign.json()["id"], "0" * 24, "garbage"]:
            response = await client.post(
                room.url, headers=room.bob.headers, json={"content": "x", field_name: target}
            )
            assert response.status_code == 422, (field_name, target)
            assert field_name in response.json()["message"]
    nested = await client.post(
        room.url, headers=room.bob.headers, json={"content": "x", "thread_id": reply["id"]}
    )
    assert nested.status_code == 422


# --- editing and deleting ------------------------------------------------------------------


async def test_only_the_author_edits(client: httpx.AsyncClient, room: Room) -> None:
    message = await post(client, room, room.alice, "draft")
    url = f"{room.url}/{message['id']}"
    for who in (room.bob, room.owner, room.admin):
        response = await client.put(url, headers=who.headers, json={"content": "hijack"})
        assert response.status_code == 403
    edited = await client.put(url, headers=room.alice.headers, json={"content": "final"})
    assert edited.status_code == 200
    body = edited.json()
    assert body["content"] == "final" and body["is_edited"] is True
    assert body["id"] == message["id"] and body["created_at"] == message["created_at"]
    assert body["updated_at"] >= message["updated_at"]
    assert (await page(client, room, room.bob))["items"] == [body]
    for bad in [{"content": " "}, {"content": "x" * 10001}, {}]:
        assert (await client.put(url, headers=room.alice.headers, json=bad)).status_code == 422
    for mid in ["0" * 24, "bad"]:
        missing = await client.put(
            f"{room.url}/{mid}", headers=room.alice.headers, json={"content": "x"}
        )
        assert missing.status_code == 404


async def test_author_or_tenant_admin_deletes(client: httpx.AsyncClient, room: Room) -> None:
    by_alice = [await post(client, room, room.alice, f"a{i}") for i in range(3)]
    refused = await client.delete(f"{room.url}/{by_alice[0]['id']}", headers=room.bob.headers)
    assert refused.status_code == 403
    for who, message in zip((room.alice, room.admin, room.owner), by_alice, strict=True):
        response = await client.delete(f"{room.url}/{message['id']}", headers=who.headers)
        assert response.status_code == 200 and response.json() == {"deleted": True}
    assert (await page(client, room, room.bob))["items"] == []
    again = await client.delete(f"{room.url}/{by_alice[0]['id']}", headers=room.alice.headers)
    assert again.status_code == 404
    edit_gone = await client.put(
        f"{room.url}/{by_alice[0]['id']}", headers=room.alice.headers, json={"content": "x"}
    )
    assert edit_gone.status_code == 404


# --- events --------------------------------------------------------------------------------


async def test_post_publishes_create_to_members_except_sender_after_commit(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    response = await client.post(
        room.url,
        headers={**room.alice.headers, "X-Connection-Id": "conn-7"},
        json={"content": "ping"},
    )
    assert response.status_code == 201
    assert recorder.published == [
        Published(
            user_ids=sorted([room.owner.id, room.alice.id, room.bob.id]),
            event_type="message:create",
            data=response.json(),
            exclude_user=room.alice.id,
            exclude_connection="conn-7",
            stored=True,
        )
    ]
    assert recorder.posted == [(room.cid, room.alice.id)]
    await post(client, room, room.bob, "pong")
    assert recorder.published[1].exclude_user == room.bob.id
    assert recorder.published[1].exclude_connection is None
    assert recorder.posted[1] == (room.cid, room.bob.id)


async def test_edit_and_delete_publish_to_all_members(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    root = await post(client, room, room.alice, "root")
    reply = await post(client, room, room.bob, "reply", thread_id=root["id"])
    recorder.published.clear()
    members = sorted([room.owner.id, room.alice.id, room.bob.id])
    edited = await client.put(
        f"{room.url}/{reply['id']}", headers=room.bob.headers, json={"content": "changed"}
    )
    deleted = await client.delete(f"{room.url}/{reply['id']}", headers=room.admin.headers)
    assert edited.status_code == deleted.status_code == 200
    assert recorder.published == [
        Published(members, "message:update", edited.json(), None, None, True),
        Published(
            members,
            "message:delete",
            {"message_id": reply["id"], "channel_id": room.cid, "thread_id": root["id"]},
            None,
            None,
            True,
        ),
        # The reply no longer counts on its root.
        Published(
            members,
            "message:thread",
            {
                "message_id": root["id"],
                "channel_id": room.cid,
                "reply_count": 0,
                "last_reply_at": None,
            },
            None,
            None,
            True,
        ),
    ]
    refused = await client.delete(f"{room.url}/{root['id']}", headers=room.bob.headers)
    assert refused.status_code == 403 and len(recorder.published) == 3


async def test_failed_delivery_does_not_fail_the_post(
    client: httpx.AsyncClient, app: Any, room: Room, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        async def publish(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("bus down")

        async def message_posted(self, channel_id: str, author_id: str) -> None:
            raise RuntimeError("bus down")

    app.state.ctx.events = Broken()
    message = await post(client, room, room.alice, "still stored")
    assert [m["id"] for m in (await page(client, room, room.bob))["items"]] == [message["id"]]
    assert "message:create" in caplog.text and "bus down" in caplog.text
