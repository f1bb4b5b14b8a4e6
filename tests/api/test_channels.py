from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from roomler.db.models import Tenant, TenantMember
from tests.conftest import Account

# --- helpers shared with test_messages.py and test_isolation.py ------------------------------


async def tenant_id(app: Any, slug: str) -> str:
    async with app.state.ctx.sessions() as session:
        tid = await session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    assert tid is not None, slug
    return str(tid)


async def make_tenant(app: Any, make_user: Any, owner: str, slug: str) -> tuple[Account, str]:
    """Register `owner` together with a new tenant; returns the owner and the tenant id."""
    account = await make_user(owner, tenant_name=slug.title(), tenant_slug=slug)
    return account, await tenant_id(app, slug)


async def add_to_tenant(app: Any, tid: str, account: Account, role: str = "member") -> None:
    async with app.state.ctx.sessions() as session:
        session.add(TenantMember(tenant_id=tid, user_id=account.id, role=role))
        await session.commit()


async def create_channel(
    client: httpx.AsyncClient, who: Account, tid: str, name: str, **extra: Any
) -> dict[str, Any]:
    response = await client.post(
        f"/api/tenant/{tid}/channel", headers=who.headers, json={"name": name, **extra}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def channel_list(client: httpx.AsyncClient, who: Account, tid: str) -> list[dict[str, Any]]:
    response = await client.get(f"/api/tenant/{tid}/channel", headers=who.headers)
    assert response.status_code == 200, response.text
    channels: list[dict[str, Any]] = response.json()
    return channels


async def get_channel(
    client: httpx.AsyncClient, who: Account, tid: str, cid: str
) -> httpx.Response:
    return await client.get(f"/api/tenant/{tid}/channel/{cid}", headers=who.headers)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
async def acme(app: Any, make_user: Any) -> tuple[Account, str]:
    return await make_tenant(app, make_user, "olivia", "acme")


# --- creating and the tree -----------------------------------------------------------------


async def test_create_channel_returns_it_with_creator_as_only_member(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    response = await client.post(
        f"/api/tenant/{tid}/channel",
        headers=owner.headers,
        json={"name": "general", "purpose": "Everything"},
    )
    assert response.status_code == 201
    channel = response.json()
    assert set(channel) == {
        "id", "name", "path", "channel_type", "parent_id", "is_private", "purpose",
        "member_count", "is_member", "created_by", "created_at", "archived", "archived_at",
    }  # fmt: skip
    assert len(channel["id"]) == 24 and int(channel["id"], 16) >= 0
    assert (channel["name"], channel["path"], channel["channel_type"]) == (
        "general", "general", "text"
    )  # fmt: skip
    assert channel["parent_id"] is None and channel["is_private"] is False
    assert channel["purpose"] == "Everything"
    assert channel["member_count"] == 1 and channel["is_member"] is True
    assert channel["created_by"] == owner.id and channel["created_at"].endswith("Z")
    assert channel["archived"] is False and channel["archived_at"] is None
    fetched = await get_channel(client, owner, tid, channel["id"])
    assert fetched.status_code == 200 and fetched.json() == channel
    members = (
        await client.get(f"/api/tenant/{tid}/channel/{channel['id']}/member", headers=owner.headers)
    ).json()
    assert [m["user_id"] for m in members["items"]] == [owner.id]


async def test_paths_follow_the_tree_and_list_is_ordered_by_path(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    eng = await create_channel(client, owner, tid, "eng", channel_type="category")
    backend = await create_channel(client, owner, tid, "backend", parent_id=eng["id"])
    api = await create_channel(client, owner, tid, "api", parent_id=backend["id"])
    await create_channel(client, owner, tid, "random")
    await create_channel(client, owner, tid, "eng-ops", channel_type="voice")
    await create_channel(
        client, owner, tid, "alerts", parent_id=eng["id"], channel_type="announcement"
    )
    assert (backend["path"], backend["parent_id"]) == ("eng.backend", eng["id"])
    assert (api["path"], api["parent_id"]) == ("eng.backend.api", backend["id"])
    listed = await channel_list(client, owner, tid)
    # Each channel comes right after its parent, before any sibling of that parent.
    assert [c["path"] for c in listed] == [
        "eng", "eng.alerts", "eng.backend", "eng.backend.api", "eng-ops", "random"
    ]  # fmt: skip
    assert {c["channel_type"] for c in listed} == {"category", "announcement", "text", "voice"}


async def test_invalid_channel_bodies_are_422(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    for body in [
        {"name": "a.b"},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 101},
        {"name": "ok", "channel_type": "forum"},
        {"name": "ok", "purpose": "p" * 1001},
        {"name": "ok", "is_private": "maybe"},
        {},
    ]:
        response = await client.post(f"/api/tenant/{tid}/channel", headers=owner.headers, json=body)
        assert response.status_code == 422, body
        assert response.json()["error"] == "validation" and response.json()["message"]
    longest = await create_channel(client, owner, tid, "x" * 100)
    assert longest["path"] == "x" * 100
    assert [c["name"] for c in await channel_list(client, owner, tid)] == ["x" * 100]


async def test_duplicate_path_conflicts_but_same_name_elsewhere_is_fine(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    one = await create_channel(client, owner, tid, "team")
    two = await create_channel(client, owner, tid, "other")
    await create_channel(client, owner, tid, "notes", parent_id=one["id"])
    nested = await create_channel(client, owner, tid, "notes", parent_id=two["id"])
    assert nested["path"] == "other.notes"
    again = await client.post(
        f"/api/tenant/{tid}/channel", headers=owner.headers, json={"name": "team"}
    )
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    child_again = await client.post(
        f"/api/tenant/{tid}/channel",
        headers=owner.headers,
        json={"name": "notes", "parent_id": one["id"]},
    )
    assert child_again.status_code == 409


async def test_unknown_or_malformed_parent_is_404(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    for parent in ["0" * 24, "not-an-id", "ABCDEF0123456789ABCDEF01"]:
        response = await client.post(
            f"/api/tenant/{tid}/channel",
            headers=owner.headers,
            json={"name": "child", "parent_id": parent},
        )
        assert response.status_code == 404, parent
        assert response.json()["error"] == "not_found"
    assert await channel_list(client, owner, tid) == []


async def test_unknown_and_malformed_channel_ids_are_404(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    for cid in ["0" * 24, "xyz", "0" * 25]:
        for method, suffix in [
            ("GET", ""), ("PUT", ""), ("DELETE", ""), ("POST", "/join"), ("POST", "/leave"),
            ("GET", "/member"), ("POST", "/member"), ("GET", "/message"),
        ]:  # fmt: skip
            response = await client.request(
                method,
                f"/api/tenant/{tid}/channel/{cid}{suffix}",
                headers=owner.headers,
                json={"name": "n", "user_id": owner.id},
            )
            assert response.status_code == 404, (cid, method, suffix)


async def test_tenant_membership_is_required(
    client: httpx.AsyncClient, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    general = await create_channel(client, owner, tid, "general")
    stranger = await make_user("stranger")
    base = f"/api/tenant/{tid}/channel"
    assert (await client.get(base)).status_code == 401
    for url in [base, f"{base}/explore", f"{base}/{general['id']}"]:
        response = await client.get(url, headers=stranger.headers)
        assert response.status_code == 403 and response.json()["error"] == "forbidden"
    for other_tenant in ["0" * 24, "garbage"]:
        response = await client.get(f"/api/tenant/{other_tenant}/channel", headers=owner.headers)
        assert response.status_code == 403


# --- explore -------------------------------------------------------------------------------


async def test_explore_searches_public_channels_by_name_or_purpose(
    client: httpx.AsyncClient, app: Any, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    bob = await make_user("bob")
    cat = await make_user("cat")
    for account in (bob, cat):
        await add_to_tenant(app, tid, account)
    design = await create_channel(client, owner, tid, "Design", purpose="Pixels")
    music = await create_channel(client, owner, tid, "music", purpose="Playlists and DESIGN talk")
    await create_channel(client, owner, tid, "zebra")
    await create_channel(client, owner, tid, "design-secret", is_private=True)
    for account in (bob, cat):
        assert (
            await client.post(
                f"/api/tenant/{tid}/channel/{music['id']}/join", headers=account.headers
            )
        ).status_code == 200

    async def explore(params: dict[str, str]) -> list[dict[str, Any]]:
        response = await client.get(
            f"/api/tenant/{tid}/channel/explore", headers=bob.headers, params=params
        )
        assert response.status_code == 200
        found: list[dict[str, Any]] = response.json()
        return found

    found = await explore({"q": "deSIGN"})
    assert [c["id"] for c in found] == [music["id"], design["id"]]
    assert [c["member_count"] for c in found] == [3, 1]
    assert [c["is_member"] for c in found] == [True, False]
    assert [c["name"] for c in await explore({})] == ["music", "Design", "zebra"]
    assert [c["name"] for c in await explore({"q": "PIXEL"})] == ["Design"]
    assert await explore({"q": "nothing-like-this"}) == []
    assert await explore({"q": "%"}) == []


# --- private channels ----------------------------------------------------------------------


async def test_private_channel_is_invisible_to_tenant_members_outside_it(
    client: httpx.AsyncClient, app: Any, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    bob = await make_user("bob")
    await add_to_tenant(app, tid, bob)
    secret = await create_channel(client, owner, tid, "secret", is_private=True)
    cid = secret["id"]
    assert secret["is_private"] is True
    assert [c["id"] for c in await channel_list(client, owner, tid)] == [cid]
    assert await channel_list(client, bob, tid) == []
    base = f"/api/tenant/{tid}/channel/{cid}"
    for method, url in [
        ("GET", base), ("GET", f"{base}/member"), ("GET", f"{base}/message"),
        ("POST", f"{base}/join"), ("POST", f"{base}/leave"), ("PUT", base), ("DELETE", base),
    ]:  # fmt: skip
        response = await client.request(method, url, headers=bob.headers, json={"name": "x"})
        assert response.status_code == 404, (method, url)
    child = await client.post(
        f"/api/tenant/{tid}/channel", headers=bob.headers, json={"name": "c", "parent_id": cid}
    )
    assert child.status_code == 404

    added = await client.post(f"{base}/member", headers=owner.headers, json={"user_id": bob.id})
    assert added.status_code == 201
    assert added.json()["user_id"] == bob.id and added.json()["username"] == "bob"
    assert added.json()["display_name"] == "Bob" and added.json()["joined_at"].endswith("Z")
    seen = await get_channel(client, bob, tid, cid)
    assert seen.status_code == 200 and seen.json()["is_member"] is True
    assert seen.json()["member_count"] == 2
    assert [c["id"] for c in await channel_list(client, bob, tid)] == [cid]


async def test_private_channel_cannot_be_joined_and_admin_adds_members(
    client: httpx.AsyncClient, app: Any, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    admin = await make_user("adam")
    bob = await make_user("bob")
    outsider = await make_user("outsider")
    await add_to_tenant(app, tid, admin, role="admin")
    await add_to_tenant(app, tid, bob)
    secret = await create_channel(client, owner, tid, "secret", is_private=True)
    base = f"/api/tenant/{tid}/channel/{secret['id']}"
    # An admin can reach the channel by id but may not join it on their own.
    joined = await client.post(f"{base}/join", headers=admin.headers)
    assert joined.status_code == 403 and joined.json()["error"] == "forbidden"
    assert (await client.post(f"{base}/join", headers=bob.headers)).status_code == 404
    # The owner, already a member, joins idempotently.
    assert (await client.post(f"{base}/join", headers=owner.headers)).json() == {"joined": True}

    added = await client.post(f"{base}/member", headers=admin.headers, json={"user_id": bob.id})
    assert added.status_code == 201
    twice = await client.post(f"{base}/member", headers=admin.headers, json={"user_id": bob.id})
    assert twice.status_code == 409
    for user_id in [outsider.id, "0" * 24, "bob"]:
        response = await client.post(
            f"{base}/member", headers=admin.headers, json={"user_id": user_id}
        )
        assert response.status_code == 404, user_id
    bob_adds = await client.post(f"{base}/member", headers=bob.headers, json={"user_id": admin.id})
    assert bob_adds.status_code == 403
    channel = (await get_channel(client, owner, tid, secret["id"])).json()
    assert channel["member_count"] == 2
    assert secret["id"] not in [c["id"] for c in await channel_list(client, admin, tid)]


async def test_members_of_a_public_channel_are_added_by_creator_or_admin_only(
    client: httpx.AsyncClient, app: Any, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    bob = await make_user("bob")
    cat = await make_user("cat")
    for account in (bob, cat):
        await add_to_tenant(app, tid, account)
    bobs = await create_channel(client, bob, tid, "bobs")
    base = f"/api/tenant/{tid}/channel/{bobs['id']}/member"
    assert (
        await client.post(base, headers=bob.headers, json={"user_id": cat.id})
    ).status_code == 201
    general = await create_channel(client, owner, tid, "general")
    response = await client.post(
        f"/api/tenant/{tid}/channel/{general['id']}/member",
        headers=bob.headers,
        json={"user_id": cat.id},
    )
    assert response.status_code == 403
    assert (await get_channel(client, owner, tid, general["id"])).json()["member_count"] == 1


# --- join, leave, members ------------------------------------------------------------------


async def test_join_and_leave_are_idempotent_and_keep_member_count(
    client: httpx.AsyncClient, app: Any, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    bob = await make_user("bob")
    await add_to_tenant(app, tid, bob)
    general = await create_channel(client, owner, tid, "general")
    base = f"/api/tenant/{tid}/channel/{general['id']}"

    async def state(who: Account) -> tuple[int, bool]:
        channel = (await get_channel(client, who, tid, general["id"])).json()
        return channel["member_count"], channel["is_member"]

    assert await state(bob) == (1, False)
    for _ in range(2):
        response = await client.post(f"{base}/join", headers=bob.headers)
        assert response.status_code == 200 and response.json() == {"joined": True}
        assert await state(bob) == (2, True)
    listed = await channel_list(client, bob, tid)
    assert [(c["member_count"], c["is_member"]) for c in listed] == [(2, True)]
    for _ in range(2):
        response = await client.post(f"{base}/leave", headers=bob.headers)
        assert response.status_code == 200 and response.json() == {"left": True}
        assert await state(bob) == (1, False)
    assert (await client.post(f"{base}/leave", headers=owner.headers)).json() == {"left": True}
    assert await state(owner) == (0, False)
    # A public channel stays visible to tenant members who left it.
    assert [c["is_member"] for c in await channel_list(client, owner, tid)] == [False]


async def test_member_list_is_paginated_in_join_order(
    client: httpx.AsyncClient, app: Any, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    general = await create_channel(client, owner, tid, "general")
    base = f"/api/tenant/{tid}/channel/{general['id']}"
    joiners = []
    for name in ["ann", "ben", "cyd", "dot"]:
        account = await make_user(name)
        await add_to_tenant(app, tid, account)
        assert (await client.post(f"{base}/join", headers=account.headers)).status_code == 200
        joiners.append(account)
    first = await client.get(f"{base}/member", headers=joiners[0].headers, params={"per_page": 3})
    second = await client.get(
        f"{base}/member", headers=joiners[0].headers, params={"per_page": 3, "page": 2}
    )
    assert first.status_code == second.status_code == 200
    page1, page2 = first.json(), second.json()
    assert (page1["total"], page1["total_pages"], page1["page"], page1["per_page"]) == (5, 2, 1, 3)
    names = [m["username"] for m in page1["items"] + page2["items"]]
    assert names == ["olivia", "ann", "ben", "cyd", "dot"]
    assert set(page1["items"][0]) == {"user_id", "username", "display_name", "joined_at"}
    too_big = await client.get(f"{base}/member", headers=owner.headers, params={"per_page": 101})
    assert too_big.status_code == 422


# --- update and delete ---------------------------------------------------------------------


async def test_rename_moves_the_subtree_and_conflicts_are_409(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    eng = await create_channel(client, owner, tid, "eng", channel_type="category")
    backend = await create_channel(client, owner, tid, "backend", parent_id=eng["id"])
    await create_channel(client, owner, tid, "api", parent_id=backend["id"])
    await create_channel(client, owner, tid, "engineering")
    url = f"/api/tenant/{tid}/channel/{eng['id']}"
    taken = await client.put(url, headers=owner.headers, json={"name": "engineering"})
    assert taken.status_code == 409 and taken.json()["error"] == "conflict"
    renamed = await client.put(url, headers=owner.headers, json={"name": "dev"})
    assert renamed.status_code == 200
    assert (renamed.json()["name"], renamed.json()["path"]) == ("dev", "dev")
    paths = [c["path"] for c in await channel_list(client, owner, tid)]
    assert paths == ["dev", "dev.backend", "dev.backend.api", "engineering"]
    middle = await client.put(
        f"/api/tenant/{tid}/channel/{backend['id']}", headers=owner.headers, json={"name": "be"}
    )
    assert middle.json()["path"] == "dev.be"
    paths = [c["path"] for c in await channel_list(client, owner, tid)]
    assert paths == ["dev", "dev.be", "dev.be.api", "engineering"]
    # The old name is free again.
    assert (await create_channel(client, owner, tid, "eng"))["path"] == "eng"


async def test_rename_moves_only_true_descendants(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    for name in ["Eng", "eng", "e_g", "e%g"]:
        parent = await create_channel(client, owner, tid, name)
        await create_channel(client, owner, tid, "child", parent_id=parent["id"])
    by_path = {c["path"]: c["id"] for c in await channel_list(client, owner, tid)}
    for old, new in [("Eng", "Big"), ("e_g", "under"), ("e%g", "pct")]:
        response = await client.put(
            f"/api/tenant/{tid}/channel/{by_path[old]}", headers=owner.headers, json={"name": new}
        )
        assert response.status_code == 200, old
    paths = [c["path"] for c in await channel_list(client, owner, tid)]
    assert paths == [
        "Big", "Big.child", "eng", "eng.child", "pct", "pct.child", "under", "under.child"
    ]  # fmt: skip


async def test_update_purpose_privacy_and_validation(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    general = await create_channel(client, owner, tid, "general", purpose="old")
    url = f"/api/tenant/{tid}/channel/{general['id']}"
    response = await client.put(
        url, headers=owner.headers, json={"purpose": "new", "is_private": True}
    )
    assert response.status_code == 200
    assert (response.json()["purpose"], response.json()["is_private"]) == ("new", True)
    cleared = await client.put(url, headers=owner.headers, json={"purpose": None})
    assert cleared.json()["purpose"] is None and cleared.json()["name"] == "general"
    for body in [{}, {"name": "a.b"}, {"name": ""}, {"purpose": "p" * 1001}]:
        assert (await client.put(url, headers=owner.headers, json=body)).status_code == 422, body
    assert (await get_channel(client, owner, tid, general["id"])).json()["is_private"] is True


async def test_only_creator_or_tenant_admin_may_update_or_delete(
    client: httpx.AsyncClient, app: Any, make_user: Any, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    bob = await make_user("bob")
    cat = await make_user("cat")
    admin = await make_user("adam")
    await add_to_tenant(app, tid, bob)
    await add_to_tenant(app, tid, cat)
    await add_to_tenant(app, tid, admin, role="admin")
    bobs = await create_channel(client, bob, tid, "bobs")
    url = f"/api/tenant/{tid}/channel/{bobs['id']}"
    assert (await client.post(f"{url}/join", headers=cat.headers)).status_code == 200
    assert (await client.put(url, headers=cat.headers, json={"name": "cats"})).status_code == 403
    assert (await client.delete(url, headers=cat.headers)).status_code == 403
    by_creator = await client.put(url, headers=bob.headers, json={"purpose": "mine"})
    assert by_creator.status_code == 200
    by_admin = await client.put(url, headers=admin.headers, json={"name": "renamed"})
    assert by_admin.status_code == 200 and by_admin.json()["is_member"] is False
    by_owner = await client.put(url, headers=owner.headers, json={"name": "again"})
    assert by_owner.status_code == 200
    assert (await get_channel(client, bob, tid, bobs["id"])).json()["path"] == "again"
    deleted = await client.delete(url, headers=admin.headers)
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True}


async def test_deleted_channel_is_gone_everywhere_with_its_subtree(
    client: httpx.AsyncClient, acme: tuple[Account, str]
) -> None:
    owner, tid = acme
    eng = await create_channel(client, owner, tid, "eng")
    backend = await create_channel(client, owner, tid, "backend", parent_id=eng["id"])
    keep = await create_channel(client, owner, tid, "keep")
    posted = await client.post(
        f"/api/tenant/{tid}/channel/{backend['id']}/message",
        headers=owner.headers,
        json={"content": "hi"},
    )
    assert posted.status_code == 201
    mid = posted.json()["id"]
    assert (
        await client.delete(f"/api/tenant/{tid}/channel/{eng['id']}", headers=owner.headers)
    ).status_code == 200
    assert [c["id"] for c in await channel_list(client, owner, tid)] == [keep["id"]]
    explore = await client.get(f"/api/tenant/{tid}/channel/explore", headers=owner.headers)
    assert [c["id"] for c in explore.json()] == [keep["id"]]
    for cid in (eng["id"], backend["id"]):
        base = f"/api/tenant/{tid}/channel/{cid}"
        for method, url in [
            ("GET", base), ("PUT", base), ("DELETE", base), ("POST", f"{base}/join"),
            ("POST", f"{base}/leave"), ("GET", f"{base}/member"), ("GET", f"{base}/message"),
            ("POST", f"{base}/message"), ("GET", f"{base}/message/{mid}/thread"),
            ("PUT", f"{base}/message/{mid}"), ("DELETE", f"{base}/message/{mid}"),
        ]:  # fmt: skip
            response = await client.request(
                method, url, headers=owner.headers, json={"name": "x", "content": "x"}
            )
            assert response.status_code == 404, (method, url)
    child = await client.post(
        f"/api/tenant/{tid}/channel",
        headers=owner.headers,
        json={"name": "c", "parent_id": eng["id"]},
    )
    assert child.status_code == 404
    # Deleting frees the paths.
    again = await create_channel(client, owner, tid, "eng")
    assert (await create_channel(client, owner, tid, "backend", parent_id=again["id"]))[
        "path"
    ] == "eng.backend"
