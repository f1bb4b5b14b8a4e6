"""Roles in a workspace (issue 18 item 10): who may give whom which role, on both
databases, and the `tenant:member_updated` event that keeps every tab current.

The rules (docs/api.md, Roles): owners and admins change roles between member and admin;
only an owner grants the owner role or takes it away; the last owner stays one; a member
changes nobody's role, their own included."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_messages import RecordingPublisher
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_tenants import add_member, create_tenant
from tests.conftest import Account


async def set_role(
    client: httpx.AsyncClient, actor: Account, tid: str, who: Account, role: str
) -> httpx.Response:
    return await client.put(
        f"/api/tenant/{tid}/member/{who.id}", headers=actor.headers, json={"role": role}
    )


async def roles(client: httpx.AsyncClient, actor: Account, tid: str) -> dict[str, str]:
    response = await client.get(f"/api/tenant/{tid}/member", headers=actor.headers)
    assert response.status_code == 200, response.text
    return {m["username"]: m["role"] for m in response.json()["items"]}


async def workspace(client: httpx.AsyncClient, make_user: Any) -> tuple[str, list[Account]]:
    owner, admin, alice, bob = [await make_user(n) for n in ("olivia", "adam", "alice", "bob")]
    tid = (await create_tenant(client, owner, "acme"))["id"]
    for account, role in ((admin, "admin"), (alice, "member"), (bob, "member")):
        added = await add_member(client, owner, tid, user_id=account.id, role=role)
        assert added.status_code == 201, added.text
    return tid, [owner, admin, alice, bob]


async def test_owners_and_admins_promote_and_demote_members(
    client: httpx.AsyncClient, make_user: Any, recorder: RecordingPublisher
) -> None:
    tid, (owner, admin, alice, bob) = await workspace(client, make_user)
    promoted = await set_role(client, owner, tid, alice, "admin")
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["role"] == "admin"
    assert (await set_role(client, admin, tid, bob, "admin")).json()["role"] == "admin"
    assert (await set_role(client, alice, tid, bob, "member")).json()["role"] == "member"
    assert await roles(client, bob, tid) == {
        "olivia": "owner",
        "adam": "admin",
        "alice": "admin",
        "bob": "member",
    }
    # Every member hears each change, the member concerned too.
    updates = [p for p in recorder.published if p.event_type == "tenant:member_updated"]
    assert [(p.data["member"]["username"], p.data["member"]["role"]) for p in updates] == [
        ("alice", "admin"),
        ("bob", "admin"),
        ("bob", "member"),
    ]
    everyone = {a.id for a in (owner, admin, alice, bob)}
    assert all(set(p.user_ids) == everyone and p.data["tenant_id"] == tid for p in updates)
    # The same role again changes nothing and tells nobody.
    assert (await set_role(client, owner, tid, bob, "member")).status_code == 200
    assert len([p for p in recorder.published if p.event_type == "tenant:member_updated"]) == 3


async def test_members_change_no_roles_and_admins_never_touch_the_owner_role(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    tid, (owner, admin, alice, bob) = await workspace(client, make_user)
    refused = [
        (alice, bob, "admin", "Only an owner or admin may change roles"),
        (alice, alice, "admin", "Only an owner or admin may change roles"),
        (admin, bob, "owner", "Only an owner may grant or take the owner role"),
        (admin, admin, "owner", "Only an owner may grant or take the owner role"),
        (admin, owner, "member", "Only an owner may grant or take the owner role"),
    ]
    for actor, target, role, message in refused:
        response = await set_role(client, actor, tid, target, role)
        assert response.status_code == 403, (actor.username, target.username, role)
        assert response.json()["message"] == message
    assert (await set_role(client, admin, tid, admin, "member")).json()["role"] == "member"
    stranger = await make_user("mallory")
    outside = await set_role(client, stranger, tid, bob, "admin")
    assert outside.status_code == 403
    missing = await set_role(client, owner, tid, stranger, "admin")
    assert missing.status_code == 404
    bad = await client.put(
        f"/api/tenant/{tid}/member/{bob.id}", headers=owner.headers, json={"role": "king"}
    )
    assert bad.status_code == 422
    assert await roles(client, owner, tid) == {
        "olivia": "owner",
        "adam": "member",
        "alice": "member",
        "bob": "member",
    }


async def test_the_last_owner_stays_one_until_another_is_made(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    tid, (owner, admin, alice, _bob) = await workspace(client, make_user)
    alone = await set_role(client, owner, tid, owner, "admin")
    assert alone.status_code == 409
    assert alone.json()["message"].startswith("The last owner cannot stop being one")
    assert (await set_role(client, owner, tid, alice, "owner")).json()["role"] == "owner"
    # Two owners: either may step down, and the workspace's owner_id follows.
    assert (await set_role(client, alice, tid, owner, "member")).json()["role"] == "member"
    tenants = await client.get("/api/tenant", headers=alice.headers)
    [acme] = [t for t in tenants.json() if t["id"] == tid]
    assert acme["owner_id"] == alice.id and acme["role"] == "owner"
    # The former owner, now a member, changes nobody's role.
    assert (await set_role(client, owner, tid, admin, "member")).status_code == 403


async def test_renaming_and_deleting_a_channel_tell_whoever_sees_it(
    client: httpx.AsyncClient, make_user: Any, recorder: RecordingPublisher
) -> None:
    tid, (owner, admin, alice, bob) = await workspace(client, make_user)
    base = f"/api/tenant/{tid}/channel"
    parent = (await client.post(base, headers=owner.headers, json={"name": "eng"})).json()
    child = (
        await client.post(
            base, headers=owner.headers, json={"name": "web", "parent_id": parent["id"]}
        )
    ).json()
    renamed = await client.put(
        f"{base}/{parent['id']}", headers=admin.headers, json={"name": "dev", "purpose": "Build"}
    )
    assert renamed.status_code == 200, renamed.text
    [update] = [p for p in recorder.published if p.event_type == "channel:updated"]
    assert set(update.user_ids) == {owner.id, admin.id, alice.id, bob.id}
    assert update.data["name"] == "dev" and update.data["purpose"] == "Build"
    assert update.data["paths"] == {parent["id"]: "dev", child["id"]: "dev.web"}

    # Made private: those outside it no longer see it and are told so.
    private = await client.put(
        f"{base}/{parent['id']}", headers=owner.headers, json={"is_private": True}
    )
    assert private.status_code == 200
    [hidden] = [p for p in recorder.published if p.event_type == "channel:removed"]
    assert set(hidden.user_ids) == {admin.id, alice.id, bob.id}
    assert hidden.data == {"tenant_id": tid, "channel_ids": [parent["id"]]}

    # Deleted: each viewer hears of the channels they saw go, the sub-channel with it.
    deleted = await client.delete(f"{base}/{parent['id']}", headers=owner.headers)
    assert deleted.status_code == 200
    gone = [p for p in recorder.published if p.event_type == "channel:removed"][1:]
    told = {user_id: p.data["channel_ids"] for p in gone for user_id in p.user_ids}
    assert told[owner.id] == [parent["id"], child["id"]]
    for other in (admin, alice, bob):
        assert told[other.id] == [child["id"]]  # the public sub-channel only
    # A member who is not the channel's creator nor an admin may not rename it.
    public = (await client.post(base, headers=owner.headers, json={"name": "general"})).json()
    refused = await client.put(f"{base}/{public['id']}", headers=bob.headers, json={"name": "x"})
    assert refused.status_code == 403
