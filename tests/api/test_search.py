"""Search: messages of the caller's own channels by words and filters, people and channels by
name; never a message of a channel the caller is not in; bad queries are 422, never 500."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_channels import add_to_tenant, create_channel, make_tenant
from tests.api.test_messages import Room, post
from tests.api.test_messages import room as room  # noqa: F401 (fixture)
from tests.conftest import Account


async def search(
    client: httpx.AsyncClient, room: Room, who: Account, q: str, **params: Any
) -> dict[str, Any]:
    response = await client.get(
        f"/api/tenant/{room.tid}/search", headers=who.headers, params={"q": q, **params}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def found(client: httpx.AsyncClient, room: Room, who: Account, q: str) -> list[str]:
    """The text of each message found, newest first (the snippet's parts joined)."""
    body = await search(client, room, who, q)
    return ["".join(part["text"] for part in m["snippet"]) for m in body["messages"]]


def marked(result: dict[str, Any]) -> list[str]:
    return [part["text"] for part in result["snippet"] if part["match"]]


async def test_a_word_finds_messages_newest_first_with_their_context(
    client: httpx.AsyncClient, room: Room
) -> None:
    first = await post(client, room, room.alice, "The deploy is on Friday.")
    await post(client, room, room.bob, "Lunch at noon?")
    second = await post(client, room, room.bob, "Deploy went fine, DEPLOY again next week")
    body = await search(client, room, room.alice, "deploy")
    assert [m["id"] for m in body["messages"]] == [second["id"], first["id"]]
    newest = body["messages"][0]
    assert newest["channel_id"] == room.cid and newest["thread_id"] is None
    assert newest["created_at"] == second["created_at"] and newest["is_edited"] is False
    assert newest["channel"] == {
        "id": room.cid, "name": "general", "path": "general", "channel_type": "text",
        "is_private": False,
    }  # fmt: skip
    assert newest["author"] == {
        "id": room.bob.id,
        "username": "bob",
        "display_name": "Bob",
        "avatar": None,
    }
    # Every occurrence is marked, whatever its case; the rest is plain text.
    assert marked(newest) == ["Deploy", "DEPLOY"]
    assert newest["snippet"][1] == {"text": " went fine, ", "match": False}
    assert body["next_before"] is None


async def test_words_all_match_the_last_as_a_prefix_and_quotes_make_a_phrase(
    client: httpx.AsyncClient, room: Room
) -> None:
    await post(client, room, room.alice, "release notes are ready")
    await post(client, room, room.alice, "notes about the release")
    await post(client, room, room.alice, "the releases page")
    assert await found(client, room, room.bob, "notes release") == [
        "notes about the release",
        "release notes are ready",
    ]
    assert await found(client, room, room.bob, '"release notes"') == ["release notes are ready"]
    # Search as you type: the last word may be unfinished (3 characters or more).
    assert len(await found(client, room, room.bob, "relea")) == 3
    assert await found(client, room, room.bob, "notes relea") == [
        "notes about the release",
        "release notes are ready",
    ]
    assert await found(client, room, room.bob, "re") == []
    # Punctuation separates words on both databases.
    await post(client, room, room.alice, "see docs.example.com/setup_guide or v3.14")
    assert await found(client, room, room.bob, "example setup") == [
        "see docs.example.com/setup_guide or v3.14"
    ]
    assert await found(client, room, room.bob, "guide 14") == [
        "see docs.example.com/setup_guide or v3.14"
    ]


async def test_an_edit_is_searched_by_its_new_words(client: httpx.AsyncClient, room: Room) -> None:
    message = await post(client, room, room.alice, "meet at the harbour")
    edited = await client.put(
        f"{room.url}/{message['id']}",
        headers=room.alice.headers,
        json={"content": "meet at the station"},
    )
    assert edited.status_code == 200
    assert await found(client, room, room.bob, "harbour") == []
    body = await search(client, room, room.bob, "station")
    assert [m["id"] for m in body["messages"]] == [message["id"]]
    assert body["messages"][0]["is_edited"] is True


async def test_deleted_messages_and_channels_are_not_found(
    client: httpx.AsyncClient, room: Room
) -> None:
    gone = await post(client, room, room.alice, "secret plan one")
    await post(client, room, room.alice, "secret plan two")
    deleted = await client.delete(f"{room.url}/{gone['id']}", headers=room.alice.headers)
    assert deleted.status_code == 200
    assert await found(client, room, room.bob, "secret") == ["secret plan two"]
    closed = await client.delete(
        f"/api/tenant/{room.tid}/channel/{room.cid}", headers=room.owner.headers
    )
    assert closed.status_code == 200, closed.text
    assert await found(client, room, room.bob, "secret") == []


async def test_only_messages_of_the_callers_channels_are_found(
    client: httpx.AsyncClient, app: Any, make_user: Any, room: Room
) -> None:
    base = f"/api/tenant/{room.tid}/channel"
    await post(client, room, room.alice, "zebra in general")
    # A private channel of alice's that bob is not in.
    hidden = await create_channel(client, room.alice, room.tid, "hidden", is_private=True)
    posted = await client.post(
        f"{base}/{hidden['id']}/message",
        headers=room.alice.headers,
        json={"content": "zebra hidden"},
    )
    assert posted.status_code == 201
    # A direct conversation between alice and carol.
    dm = await client.post(
        f"/api/tenant/{room.tid}/dm", headers=room.alice.headers, json={"user_ids": [room.carol.id]}
    )
    dm_id = dm.json()["id"]
    posted = await client.post(
        f"{base}/{dm_id}/message", headers=room.carol.headers, json={"content": "zebra direct"}
    )
    assert posted.status_code == 201
    # Another tenant where bob is a member, with its own zebra.
    other_owner, other_tid = await make_tenant(app, make_user, "oscar", "other")
    await add_to_tenant(app, other_tid, room.bob)
    elsewhere = await create_channel(client, other_owner, other_tid, "general")
    posted = await client.post(
        f"/api/tenant/{other_tid}/channel/{elsewhere['id']}/message",
        headers=other_owner.headers,
        json={"content": "zebra elsewhere"},
    )
    assert posted.status_code == 201

    assert await found(client, room, room.alice, "zebra") == [
        "zebra direct",
        "zebra hidden",
        "zebra in general",
    ]
    assert await found(client, room, room.bob, "zebra") == ["zebra in general"]
    # Carol is not in general (public, but she has not joined): only her conversation.
    assert await found(client, room, room.carol, "zebra") == ["zebra direct"]
    carol = await search(client, room, room.carol, "zebra")
    assert carol["messages"][0]["channel"]["channel_type"] == "direct"
    assert sorted(carol["messages"][0]["channel"]["member_ids"]) == sorted(
        [room.alice.id, room.carol.id]
    )
    # Naming a channel one is not in finds nothing in it.
    assert await found(client, room, room.bob, "zebra in:#hidden") == []
    # Nor does a page cursor pointing into it.
    response = await client.get(
        f"/api/tenant/{room.tid}/search",
        headers=room.bob.headers,
        params={"q": "zebra", "before": posted.json()["id"]},
    )
    assert response.status_code == 422
    # Leaving the channel takes its messages out of one's results.
    left = await client.post(f"{base}/{room.cid}/leave", headers=room.bob.headers)
    assert left.status_code == 200
    assert await found(client, room, room.bob, "zebra") == []
    # Outsiders of the tenant are refused.
    outsider = await make_user("mallory")
    response = await client.get(
        f"/api/tenant/{room.tid}/search", headers=outsider.headers, params={"q": "zebra"}
    )
    assert response.status_code == 403
    response = await client.get(f"/api/tenant/{room.tid}/search", params={"q": "zebra"})
    assert response.status_code == 401


async def test_filters_by_channel_and_author(client: httpx.AsyncClient, room: Room) -> None:
    team = await create_channel(client, room.alice, room.tid, "team chat")
    joined = await client.post(
        f"/api/tenant/{room.tid}/channel/{team['id']}/join", headers=room.bob.headers
    )
    assert joined.status_code == 200
    team_url = f"/api/tenant/{room.tid}/channel/{team['id']}/message"
    for who, url, text in [
        (room.alice, room.url, "budget by alice in general"),
        (room.bob, room.url, "budget by bob in general"),
        (room.alice, team_url, "budget by alice in team"),
    ]:
        response = await client.post(url, headers=who.headers, json={"content": text})
        assert response.status_code == 201
    assert await found(client, room, room.bob, "budget in:#general") == [
        "budget by bob in general",
        "budget by alice in general",
    ]
    assert await found(client, room, room.bob, 'budget in:#"Team Chat"') == [
        "budget by alice in team"
    ]
    assert await found(client, room, room.bob, "budget from:@Alice") == [
        "budget by alice in team",
        "budget by alice in general",
    ]
    assert await found(client, room, room.bob, "from:@alice in:#general") == [
        "budget by alice in general"
    ]
    # Several of a kind widen.
    assert len(await found(client, room, room.bob, 'in:#general in:#"team chat"')) == 3
    assert len(await found(client, room, room.bob, "budget from:@alice from:bob")) == 3
    # Unknown names find nothing (no error: the name may be half typed).
    assert await found(client, room, room.bob, "budget from:@nobody") == []
    assert await found(client, room, room.bob, "budget in:#nowhere") == []
    # Filters leave people and channels out.
    body = await search(client, room, room.bob, "alice from:@alice")
    assert body["people"] == [] and body["channels"] == []


async def dm(client: httpx.AsyncClient, room: Room, who: Account, *others: Account) -> str:
    response = await client.post(
        f"/api/tenant/{room.tid}/dm", headers=who.headers, json={"user_ids": [o.id for o in others]}
    )
    assert response.status_code == 201, response.text
    conversation: str = response.json()["id"]
    return conversation


async def test_in_a_member_searches_the_conversation_with_them(
    client: httpx.AsyncClient, room: Room
) -> None:
    base = f"/api/tenant/{room.tid}/channel"
    with_bob = await dm(client, room, room.alice, room.bob)
    with_carol = await dm(client, room, room.alice, room.carol)
    group = await dm(client, room, room.alice, room.bob, room.carol)
    for who, cid, text in [
        (room.alice, room.cid, "lunch in general"),
        (room.bob, with_bob, "lunch with bob"),
        (room.alice, with_carol, "lunch with carol"),
        (room.carol, group, "lunch with all three"),
    ]:
        response = await client.post(
            f"{base}/{cid}/message", headers=who.headers, json={"content": text}
        )
        assert response.status_code == 201, response.text
    assert await found(client, room, room.alice, "lunch in:@Bob") == ["lunch with bob"]
    assert await found(client, room, room.bob, "lunch in:@alice") == ["lunch with bob"]
    # A filter alone lists the conversation; from: narrows it, other in: widen it.
    assert await found(client, room, room.carol, "in:@alice") == ["lunch with carol"]
    assert await found(client, room, room.alice, "in:@bob from:@alice") == []
    assert await found(client, room, room.alice, "lunch in:@bob in:@carol in:#general") == [
        "lunch with carol",
        "lunch with bob",
        "lunch in general",
    ]
    # Only a one-to-one conversation of one's own: bob and carol share only the group.
    assert await found(client, room, room.bob, "lunch in:@carol") == []
    assert await found(client, room, room.bob, "lunch in:@nobody") == []
    assert await found(client, room, room.alice, "lunch in:@alice") == []
    # Filters leave people and channels out.
    body = await search(client, room, room.alice, "bob in:@bob")
    assert body["people"] == [] and body["channels"] == []


async def test_pages_go_back_with_next_before(client: httpx.AsyncClient, room: Room) -> None:
    for i in range(5):
        await post(client, room, room.alice, f"note number {i}")
    first = await search(client, room, room.bob, "note", limit=2)
    assert [m["snippet"][-1]["text"] for m in first["messages"]] == [" number 4", " number 3"]
    second = await search(client, room, room.bob, "note", limit=2, before=first["next_before"])
    assert [m["snippet"][-1]["text"] for m in second["messages"]] == [" number 2", " number 1"]
    # Later pages leave out people and channels.
    assert second["people"] == [] and second["channels"] == []
    third = await search(client, room, room.bob, "note", limit=2, before=second["next_before"])
    assert [m["snippet"][-1]["text"] for m in third["messages"]] == [" number 0"]
    assert third["next_before"] is None


async def test_people_and_channels_by_name(client: httpx.AsyncClient, room: Room) -> None:
    await create_channel(client, room.owner, room.tid, "alice-fans")
    await create_channel(client, room.owner, room.tid, "alice-secret", is_private=True)
    mine = await create_channel(client, room.bob, room.tid, "alice-bob", is_private=True)
    await post(client, room, room.bob, "ask alice")
    body = await search(client, room, room.bob, "ALIC")
    assert [p["username"] for p in body["people"]] == ["alice"]
    assert body["people"][0] == {
        "id": room.alice.id,
        "username": "alice",
        "display_name": "Alice",
        "avatar": None,
    }
    # Public channels, and private ones only of the caller's.
    assert sorted(c["name"] for c in body["channels"]) == ["alice-bob", "alice-fans"]
    assert mine["id"] in [c["id"] for c in body["channels"]]
    assert [m["snippet"] for m in body["messages"]] == [
        [{"text": "ask ", "match": False}, {"text": "alice", "match": True}]
    ]
    # Display names too; LIKE's wildcards are plain characters.
    assert [p["username"] for p in (await search(client, room, room.bob, "oliv"))["people"]] == [
        "olivia"
    ]
    assert (await search(client, room, room.bob, "a%"))["people"] == []
    assert (await search(client, room, room.bob, "o_"))["people"] == []  # not "bob"


async def test_a_long_message_is_cut_around_its_match(
    client: httpx.AsyncClient, room: Room
) -> None:
    text = "start " + "lorem " * 60 + "needle " + "ipsum " * 60 + "end"
    await post(client, room, room.alice, text)
    [result] = (await search(client, room, room.bob, "needle"))["messages"]
    shown = "".join(part["text"] for part in result["snippet"])
    assert shown.startswith("…lorem") and shown.endswith("ipsum…")
    assert 100 < len(shown) < 200 and marked(result) == ["needle"]


@pytest.mark.parametrize(
    "q",
    [
        '"',
        '"unbalanced quote',
        "it's",
        "a*",
        "*",
        "NEAR(a b)",
        "NEAR",
        "a AND b OR NOT c",
        "((a)",
        "a)",
        "col:umn",
        "^start",
        "-minus +plus",
        "a:* & b | !c <-> d",
        "back\\slash",
        "'single' \"double\"",
        'in:#"',
        'from:@"x',
        "emoji 🎉 ünïcödé 日本語",
        "{curly} [square]",
    ],
)
async def test_query_syntax_of_either_engine_is_plain_text(
    client: httpx.AsyncClient, room: Room, q: str
) -> None:
    await post(client, room, room.alice, "a b c d 🎉 emoji")
    response = await client.get(
        f"/api/tenant/{room.tid}/search", headers=room.bob.headers, params={"q": q}
    )
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert set(response.json()) == {"error", "message"}


async def test_operators_are_words(client: httpx.AsyncClient, room: Room) -> None:
    await post(client, room, room.alice, "meet NEAR the door AND window")
    assert len(await found(client, room, room.bob, "near AND")) == 1
    assert len(await found(client, room, room.bob, '"door AND window"')) == 1
    assert await found(client, room, room.bob, "door OR nothing") == []


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"q": "a\x00b"}, "NUL"),
        ({"q": ""}, "q: must not be empty"),
        ({"q": "   "}, "q: must not be empty"),
        ({"q": "x" * 257}, "at most 256 characters"),
        ({"q": '* ( ) "'}, "give a word to find"),
        ({"q": "in:"}, "in: needs a name"),
        ({"q": "from:@"}, "from: needs a name"),
        ({"q": " ".join(f"w{i}" for i in range(13))}, "at most 12 words"),
        ({"q": " ".join(f"in:#c{i}" for i in range(6))}, "at most 5 in: filters"),
        ({"q": "in:#a in:#b in:#c in:@d in:@e in:@f"}, "at most 5 in: filters"),
        ({"q": "in:@"}, "in: needs a name, as in in:@name"),
        ({"q": "x", "limit": 0}, "limit"),
        ({"q": "x", "limit": 51}, "limit"),
        ({"q": "x", "before": "nonsense"}, "before"),
        ({"q": "x", "before": "a\x00"}, "NUL"),
        ({}, "q"),
    ],
)
async def test_bad_queries_are_422_in_the_error_shape(
    client: httpx.AsyncClient, room: Room, params: dict[str, Any], says: str
) -> None:
    response = await client.get(
        f"/api/tenant/{room.tid}/search", headers=room.bob.headers, params=params
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] and says in body["message"], body


async def test_a_thread_reply_is_found_with_its_thread(
    client: httpx.AsyncClient, room: Room
) -> None:
    root = await post(client, room, room.alice, "Which release is next?")
    reply = await post(client, room, room.bob, "The walrus release", thread_id=root["id"])
    [found_reply] = (await search(client, room, room.alice, "walrus"))["messages"]
    assert found_reply["id"] == reply["id"] and found_reply["thread_id"] == root["id"]
    both = (await search(client, room, room.alice, "release"))["messages"]
    assert [(m["id"], m["thread_id"]) for m in both] == [
        (reply["id"], root["id"]),
        (root["id"], None),
    ]
