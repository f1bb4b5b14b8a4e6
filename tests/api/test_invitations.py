"""Invite links: created, listed and revoked by a tenant's owners and admins; a new user
signs up straight into the tenant with one, an existing user joins with one; expiry,
max uses and revocation are honoured."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from roomler.db.models import Invitation, utcnow
from tests.api.test_tenants import add_member, create_tenant
from tests.conftest import Account

NOT_VALID = "The invitation is not valid (unknown, expired, used up or revoked)"


async def invite(
    client: httpx.AsyncClient, actor: Account, tid: str, **body: Any
) -> httpx.Response:
    return await client.post(f"/api/tenant/{tid}/invitation", headers=actor.headers, json=body)


async def tenant_ids(client: httpx.AsyncClient, account: Account) -> list[str]:
    response = await client.get("/api/tenant", headers=account.headers)
    assert response.status_code == 200
    return [t["id"] for t in response.json()]


async def signup(client: httpx.AsyncClient, username: str, code: str) -> httpx.Response:
    response = await client.post(
        "/api/auth/register",
        json={
            "email": f"{username}@example.com",
            "username": username,
            "display_name": username.title(),
            "password": "correct horse battery",
            "invite_code": code,
        },
    )
    client.cookies.clear()
    return response


async def test_owner_and_admin_create_list_and_revoke_members_cannot(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner, admin, member, outsider = [
        await make_user(n) for n in ("owner", "admin", "member", "outsider")
    ]
    tid = (await create_tenant(client, owner, "acme"))["id"]
    assert (await add_member(client, owner, tid, username="admin", role="admin")).status_code == 201
    assert (await add_member(client, owner, tid, username="member")).status_code == 201

    created = await invite(client, owner, tid, expires_in_secs=3600, max_uses=5)
    assert created.status_code == 201, created.text
    link = created.json()
    assert link["tenant_id"] == tid and link["uses"] == 0 and link["max_uses"] == 5
    assert link["state"] == "active" and link["url"].endswith(f"/invite/{link['code']}")
    assert len(link["code"]) >= 24
    by_admin = await invite(client, admin, tid, expires_in_secs=None)
    assert by_admin.status_code == 201 and by_admin.json()["expires_at"] is None

    listed = await client.get(f"/api/tenant/{tid}/invitation", headers=admin.headers)
    assert [i["id"] for i in listed.json()] == [by_admin.json()["id"], link["id"]]

    for who in (member, outsider):
        assert (await invite(client, who, tid)).status_code == 403
        listing = await client.get(f"/api/tenant/{tid}/invitation", headers=who.headers)
        assert listing.status_code == 403
        gone = await client.delete(
            f"/api/tenant/{tid}/invitation/{link['id']}", headers=who.headers
        )
        assert gone.status_code == 403

    revoked = await client.delete(
        f"/api/tenant/{tid}/invitation/{link['id']}", headers=admin.headers
    )
    assert revoked.json() == {"revoked": True}
    listed = await client.get(f"/api/tenant/{tid}/invitation", headers=owner.headers)
    assert [i["id"] for i in listed.json()] == [by_admin.json()["id"]]
    # Another tenant's owner cannot revoke it through their own tenant.
    other = (await create_tenant(client, outsider, "other"))["id"]
    foreign = by_admin.json()["id"]
    answer = await client.delete(
        f"/api/tenant/{other}/invitation/{foreign}", headers=outsider.headers
    )
    assert answer.status_code == 404

    # Limits are checked.
    assert (await invite(client, owner, tid, max_uses=0)).status_code == 422
    assert (await invite(client, owner, tid, expires_in_secs=10)).status_code == 422


async def test_a_new_user_signs_up_into_the_tenant(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("owner")
    tenant = await create_tenant(client, owner, "acme")
    code = (await invite(client, owner, tenant["id"])).json()["code"]

    # The link tells anyone holding it where it leads, without signing in.
    shown = await client.get(f"/api/invitation/{code}")
    assert shown.status_code == 200
    assert shown.json()["tenant"] == {"id": tenant["id"], "name": "Acme", "slug": "acme"}
    assert shown.json()["signup"] == "open"
    unknown = await client.get("/api/invitation/not-a-code")
    assert unknown.status_code == 404 and unknown.json()["message"] == NOT_VALID

    registered = await signup(client, "newbie", code)
    assert registered.status_code == 201, registered.text
    newbie = Account(
        id=registered.json()["user"]["id"],
        username="newbie",
        email="newbie@example.com",
        access_token=registered.json()["access_token"],
        refresh_token=registered.json()["refresh_token"],
    )
    assert await tenant_ids(client, newbie) == [tenant["id"]]
    members = await client.get(f"/api/tenant/{tenant['id']}/member", headers=owner.headers)
    roles = {m["username"]: m["role"] for m in members.json()["items"]}
    assert roles == {"owner": "owner", "newbie": "member"}
    listed = await client.get(f"/api/tenant/{tenant['id']}/invitation", headers=owner.headers)
    assert listed.json()[0]["uses"] == 1

    # A made-up code is refused even under the open policy, and no account is left.
    refused = await signup(client, "guesser", "made-up-code")
    assert refused.status_code == 403 and refused.json()["message"] == NOT_VALID
    assert (await signup(client, "guesser", code)).status_code == 201


async def test_max_uses_expiry_and_revocation_are_honoured(
    app: Any, client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("owner")
    tid = (await create_tenant(client, owner, "acme"))["id"]

    twice = (await invite(client, owner, tid, max_uses=2)).json()
    assert (await signup(client, "first", twice["code"])).status_code == 201
    assert (await signup(client, "second", twice["code"])).status_code == 201
    third = await signup(client, "third", twice["code"])
    assert third.status_code == 403 and third.json()["message"] == NOT_VALID
    assert (await client.get(f"/api/invitation/{twice['code']}")).status_code == 404

    expiring = (await invite(client, owner, tid, expires_in_secs=60)).json()
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(Invitation)
            .where(Invitation.id == expiring["id"])
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert (await signup(client, "late", expiring["code"])).status_code == 403

    revoked = (await invite(client, owner, tid)).json()
    await client.delete(f"/api/tenant/{tid}/invitation/{revoked['id']}", headers=owner.headers)
    assert (await signup(client, "spurned", revoked["code"])).status_code == 403
    assert (await client.get(f"/api/invitation/{revoked['code']}")).status_code == 404

    states = {
        i["id"]: (i["state"], i["uses"])
        for i in (await client.get(f"/api/tenant/{tid}/invitation", headers=owner.headers)).json()
    }
    assert states == {twice["id"]: ("used_up", 2), expiring["id"]: ("expired", 0)}
    members = await client.get(f"/api/tenant/{tid}/member", headers=owner.headers)
    assert members.json()["total"] == 3  # the owner, first and second


async def test_an_existing_user_joins_with_the_link(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner, bob = await make_user("owner"), await make_user("bob")
    tenant = await create_tenant(client, owner, "acme")
    code = (await invite(client, owner, tenant["id"], max_uses=1)).json()["code"]

    assert (await client.post(f"/api/invitation/{code}/accept")).status_code == 401
    joined = await client.post(f"/api/invitation/{code}/accept", headers=bob.headers)
    assert joined.status_code == 200, joined.text
    assert joined.json()["id"] == tenant["id"] and joined.json()["role"] == "member"
    assert await tenant_ids(client, bob) == [tenant["id"]]
    # The link is used up now; a member presenting it again is let through.
    again = await client.post(f"/api/invitation/{code}/accept", headers=bob.headers)
    assert again.status_code == 404
    owner_link = (await invite(client, owner, tenant["id"], max_uses=1)).json()
    already = await client.post(
        f"/api/invitation/{owner_link['code']}/accept", headers=owner.headers
    )
    assert already.status_code == 200 and already.json()["role"] == "owner"
    listed = await client.get(f"/api/tenant/{tenant['id']}/invitation", headers=owner.headers)
    assert {i["code"]: i["uses"] for i in listed.json()}[owner_link["code"]] == 0


async def test_the_last_use_goes_to_one_of_two_concurrent_redemptions(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner, bob, carol = [await make_user(n) for n in ("owner", "bob", "carol")]
    tid = (await create_tenant(client, owner, "acme"))["id"]
    code = (await invite(client, owner, tid, max_uses=1)).json()["code"]
    answers = await asyncio.gather(
        client.post(f"/api/invitation/{code}/accept", headers=bob.headers),
        client.post(f"/api/invitation/{code}/accept", headers=carol.headers),
        signup(client, "dave", code),
    )
    assert sorted(a.status_code for a in answers[:2]) + [answers[2].status_code] in (
        [200, 404, 403],
        [404, 404, 201],
    )
    members = await client.get(f"/api/tenant/{tid}/member", headers=owner.headers)
    assert members.json()["total"] == 2
