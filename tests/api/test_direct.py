"""Direct conversations: 2 to 8 members of a workspace, found again for the same people,
private like a private channel (history, typing, calls), their members fixed."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.api.test_channels import add_to_tenant, create_channel, make_tenant
from tests.api.test_messages import Published, RecordingPublisher
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.conftest import Account


async def start(
    client: httpx.AsyncClient, tid: str, who: Account, *others: Account, status: int = 201
) -> dict[str, Any]:
    response = await client.post(
        f"/api/tenant/{tid}/dm", headers=who.headers, json={"user_ids": [o.id for o in others]}
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def team(app: Any, make_user: Any, size: int) -> tuple[str, list[Account]]:
    owner, tid = await make_tenant(app, make_user, "olivia", "acme")
    people = [owner]
    for i in range(size - 1):
        account = await make_user(f"user{i}")
        await add_to_tenant(app, tid, account)
        people.append(account)
    return tid, people


async def test_a_conversation_is_found_again_for_the_same_people(
    client: httpx.AsyncClient, app: Any, make_user: Any
) -> None:
    tid, (olivia, alice, bob, *_) = await team(app, make_user, 3)
    dm = await start(client, tid, olivia, alice)
    assert dm["channel_type"] == "direct" and dm["is_private"] and dm["is_member"]
    assert sorted(dm["member_ids"]) == sorted([olivia.id, alice.id])
    assert dm["member_count"] == 2
    # From either side, and naming oneself too, it is the same conversation.
    again = await start(client, tid, alice, olivia, status=200)
    assert again["id"] == dm["id"]
    assert (await start(client, tid, alice, olivia, alice, status=200))["id"] == dm["id"]
    group = await start(client, tid, olivia, alice, bob)
    assert group["id"] != dm["id"] and group["member_count"] == 3
    # Both are in their members' channel list, with their members; nobody else's.
    listed = await client.get(f"/api/tenant/{tid}/channel", headers=alice.headers)
    direct = [c for c in listed.json() if c["channel_type"] == "direct"]
    assert {c["id"] for c in direct} == {dm["id"], group["id"]}
    bobs = await client.get(f"/api/tenant/{tid}/channel", headers=bob.headers)
    assert [c["id"] for c in bobs.json() if c["channel_type"] == "direct"] == [group["id"]]
    one = await client.get(f"/api/tenant/{tid}/channel/{dm['id']}", headers=olivia.headers)
    assert sorted(one.json()["member_ids"]) == sorted([olivia.id, alice.id])


async def test_the_same_people_at_the_same_moment_get_one_conversation(
    client: httpx.AsyncClient, app: Any, make_user: Any
) -> None:
    tid, (olivia, alice, *_) = await team(app, make_user, 2)
    answers = await asyncio.gather(
        *(
            client.post(f"/api/tenant/{tid}/dm", headers=who.headers, json={"user_ids": [o.id]})
            for who, o in [(olivia, alice), (alice, olivia)] * 3
        )
    )
    assert sorted(r.status_code for r in answers).count(201) == 1
    assert len({r.json()["id"] for r in answers}) == 1


async def test_up_to_eight_members_of_the_workspace(
    client: httpx.AsyncClient, app: Any, make_user: Any
) -> None:
    tid, people = await team(app, make_user, 9)
    eight = await start(client, tid, people[0], *people[1:8])
    assert eight["member_count"] == 8
    nine = await client.post(
        f"/api/tenant/{tid}/dm",
        headers=people[0].headers,
        json={"user_ids": [p.id for p in people[1:9]]},
    )
    assert nine.status_code == 422
    assert nine.json()["message"] == "user_ids: a direct conversation has at most 8 members"
    alone = await client.post(
        f"/api/tenant/{tid}/dm", headers=people[0].headers, json={"user_ids": [people[0].id]}
    )
    assert alone.status_code == 422
    outsider = await make_user("mallory")
    for user_ids in [[outsider.id], ["0" * 24], ["nope"]]:
        response = await client.post(
            f"/api/tenant/{tid}/dm", headers=people[0].headers, json={"user_ids": user_ids}
        )
        assert response.status_code == 404, user_ids
    refused = await client.post(
        f"/api/tenant/{tid}/dm", headers=outsider.headers, json={"user_ids": [people[0].id]}
    )
    assert refused.status_code == 403


async def test_it_behaves_like_a_private_channel_with_fixed_members(
    client: httpx.AsyncClient, app: Any, make_user: Any
) -> None:
    tid, (olivia, alice, bob, *_) = await team(app, make_user, 3)
    dm = await start(client, tid, alice, bob)
    url = f"/api/tenant/{tid}/channel/{dm['id']}"
    posted = await client.post(f"{url}/message", headers=alice.headers, json={"content": "hi"})
    assert posted.status_code == 201
    history = await client.get(f"{url}/message", headers=bob.headers)
    assert [m["content"] for m in history.json()["items"]] == ["hi"]
    # The owner of the workspace is not in it: invisible, and not hers to manage.
    assert (await client.get(f"{url}/message", headers=olivia.headers)).status_code == 404
    assert (await client.get(url, headers=olivia.headers)).status_code == 404
    for method, target, body in [
        ("PUT", url, {"name": "renamed"}),
        ("DELETE", url, None),
        ("POST", f"{url}/member", {"user_id": olivia.id}),
    ]:
        for who in (olivia, alice):
            response = await client.request(method, target, headers=who.headers, json=body)
            assert response.status_code == 403, (method, target, who.username)
            assert "direct conversation" in response.json()["message"]
    assert (await client.post(f"{url}/leave", headers=alice.headers)).status_code == 403
    assert (await client.post(f"{url}/join", headers=olivia.headers)).status_code == 403
    gone = await client.delete(f"{url}/member/{bob.id}", headers=bob.headers)
    assert gone.status_code == 403
    listed = await client.get(f"{url}/member", headers=bob.headers)
    assert {m["user_id"] for m in listed.json()["items"]} == {alice.id, bob.id}
    # A conference in it is open to its members only.
    call = await client.post(
        f"/api/tenant/{tid}/conference",
        headers=alice.headers,
        json={"subject": "quick call", "channel_id": dm["id"]},
    )
    assert call.status_code == 201, call.text
    assert (
        await client.get(f"/api/tenant/{tid}/conference/{call.json()['id']}", headers=bob.headers)
    ).status_code == 200


async def test_no_channel_name_can_take_a_conversations_path(
    client: httpx.AsyncClient, app: Any, make_user: Any
) -> None:
    tid, (olivia, *_) = await team(app, make_user, 1)
    response = await client.post(
        f"/api/tenant/{tid}/channel", headers=olivia.headers, json={"name": "@dm:x"}
    )
    assert response.status_code == 422
    assert "must not start with '@'" in response.json()["message"]
    await create_channel(client, olivia, tid, "dm-ok")


async def test_its_members_hear_of_it_on_every_tab(
    client: httpx.AsyncClient, app: Any, make_user: Any, recorder: RecordingPublisher
) -> None:
    tid, (olivia, alice, bob, *_) = await team(app, make_user, 3)
    dm = await start(client, tid, alice, bob)
    assert [p.event_type for p in recorder.published] == ["channel:created"]
    created = recorder.published[0]
    assert created.user_ids == sorted([alice.id, bob.id]) and created.exclude_user is None
    assert created.data == {"tenant_id": tid, "channel": dm}
    await start(client, tid, bob, alice, status=200)
    assert len(recorder.published) == 1
    assert isinstance(created, Published)
