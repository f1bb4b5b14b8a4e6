from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from roomler.db.models import Channel, ChannelMember
from roomler.ids import new_id
from tests.conftest import Account

MEMBER_KEYS = {
    "id",
    "user_id",
    "username",
    "display_name",
    "avatar",
    "time_zone",
    "role",
    "joined_at",
}
PAGE_KEYS = {"items", "total", "page", "per_page", "total_pages"}
NOT_A_MEMBER = {"error": "forbidden", "message": "Not a member of this tenant"}


async def create_tenant(client: httpx.AsyncClient, owner: Account, slug: str) -> dict[str, Any]:
    response = await client.post(
        "/api/tenant", headers=owner.headers, json={"name": slug.title(), "slug": slug}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def add_member(
    client: httpx.AsyncClient, actor: Account, tid: str, **body: Any
) -> httpx.Response:
    return await client.post(f"/api/tenant/{tid}/member", headers=actor.headers, json=body)


async def remove_member(
    client: httpx.AsyncClient, actor: Account, tid: str, user_id: str
) -> httpx.Response:
    return await client.delete(f"/api/tenant/{tid}/member/{user_id}", headers=actor.headers)


async def member_ids(client: httpx.AsyncClient, actor: Account, tid: str) -> list[str]:
    response = await client.get(
        f"/api/tenant/{tid}/member", headers=actor.headers, params={"per_page": 100}
    )
    assert response.status_code == 200, response.text
    return [m["user_id"] for m in response.json()["items"]]


# --- tenants -----------------------------------------------------------------


async def test_create_tenant_makes_creator_owner(client: httpx.AsyncClient, make_user: Any) -> None:
    owner = await make_user("tina")
    response = await client.post(
        "/api/tenant", headers=owner.headers, json={"name": "Tina's Team", "slug": "tinas-team"}
    )
    assert response.status_code == 201
    tenant = response.json()
    assert set(tenant) == {"id", "name", "slug", "owner_id", "role"}
    assert (tenant["name"], tenant["slug"], tenant["owner_id"], tenant["role"]) == (
        "Tina's Team",
        "tinas-team",
        owner.id,
        "owner",
    )
    assert len(tenant["id"]) == 24 and int(tenant["id"], 16) >= 0
    fetched = await client.get(f"/api/tenant/{tenant['id']}", headers=owner.headers)
    assert fetched.status_code == 200 and fetched.json() == tenant
    listed = await client.get("/api/tenant", headers=owner.headers)
    assert listed.status_code == 200 and listed.json() == [tenant]
    members = await client.get(f"/api/tenant/{tenant['id']}/member", headers=owner.headers)
    [me] = members.json()["items"]
    assert (me["user_id"], me["role"]) == (owner.id, "owner")


async def test_tenant_list_holds_only_my_tenants_with_my_role(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    alice = await make_user("alice", tenant_name="Alpha", tenant_slug="alpha")
    bob = await make_user("bob", tenant_name="Beta", tenant_slug="beta")
    gamma = await create_tenant(client, bob, "gamma")
    assert (
        await add_member(client, bob, gamma["id"], user_id=alice.id, role="admin")
    ).status_code == 201
    alices = (await client.get("/api/tenant", headers=alice.headers)).json()
    assert [(t["slug"], t["role"], t["owner_id"]) for t in alices] == [
        ("alpha", "owner", alice.id),
        ("gamma", "admin", bob.id),
    ]
    bobs = (await client.get("/api/tenant", headers=bob.headers)).json()
    assert [(t["slug"], t["role"]) for t in bobs] == [("beta", "owner"), ("gamma", "owner")]
    newcomer = await make_user("carl")
    assert (await client.get("/api/tenant", headers=newcomer.headers)).json() == []


async def test_create_tenant_rejects_bad_slugs_and_duplicates(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("sam", tenant_name="Taken", tenant_slug="taken")
    for slug in ["a", "x" * 65, "Upper", "with space", "under_score", "ümlaut", ""]:
        response = await client.post(
            "/api/tenant", headers=owner.headers, json={"name": "N", "slug": slug}
        )
        assert response.status_code == 422, slug
        assert response.json()["error"] == "validation" and "slug" in response.json()["message"]
    for body in [{"slug": "ok-slug"}, {"name": "", "slug": "ok-slug"}, {"name": "N"}]:
        response = await client.post("/api/tenant", headers=owner.headers, json=body)
        assert response.status_code == 422 and response.json()["error"] == "validation"
    edge = await client.post("/api/tenant", headers=owner.headers, json={"name": "E", "slug": "0-"})
    assert edge.status_code == 201
    longest = await client.post(
        "/api/tenant", headers=owner.headers, json={"name": "L", "slug": "z" * 64}
    )
    assert longest.status_code == 201
    duplicate = await client.post(
        "/api/tenant", headers=owner.headers, json={"name": "Again", "slug": "taken"}
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == {
        "error": "conflict",
        "message": "Tenant slug 'taken' is already taken",
    }
    slugs = [t["slug"] for t in (await client.get("/api/tenant", headers=owner.headers)).json()]
    assert slugs == ["taken", "0-", "z" * 64]


async def test_tenant_routes_require_authentication(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("olga")
    tenant = await create_tenant(client, owner, "olgas")
    tid = tenant["id"]
    for method, url in [
        ("GET", "/api/tenant"),
        ("POST", "/api/tenant"),
        ("GET", f"/api/tenant/{tid}"),
        ("GET", f"/api/tenant/{tid}/member"),
        ("POST", f"/api/tenant/{tid}/member"),
        ("DELETE", f"/api/tenant/{tid}/member/{owner.id}"),
    ]:
        response = await client.request(method, url, json={"name": "x", "slug": "xx"})
        assert response.status_code == 401, (method, url)
        assert response.json()["error"] == "unauthorized"
    assert await member_ids(client, owner, tid) == [owner.id]


async def test_non_members_get_403_for_existing_unknown_and_malformed_tenants(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    alice = await make_user("alice", tenant_name="A", tenant_slug="tenant-a")
    bob = await make_user("bob", tenant_name="B", tenant_slug="tenant-b")
    tid_a = (await client.get("/api/tenant", headers=alice.headers)).json()[0]["id"]
    unknown = new_id()
    for tid in [tid_a, unknown, "not-an-id", "ABCDEF0123456789ABCDEF01", tid_a + "0"]:
        for method, url, body in [
            ("GET", f"/api/tenant/{tid}", None),
            ("GET", f"/api/tenant/{tid}/member", None),
            ("GET", f"/api/tenant/{tid}/member?per_page=0", None),
            ("POST", f"/api/tenant/{tid}/member", {"user_id": bob.id}),
            ("POST", f"/api/tenant/{tid}/member", {}),
            ("DELETE", f"/api/tenant/{tid}/member/{bob.id}", None),
            ("DELETE", f"/api/tenant/{tid}/member/{alice.id}", None),
        ]:
            response = await client.request(method, url, headers=bob.headers, json=body)
            # Same status and body for a real, an unknown and a malformed id.
            assert response.status_code == 403, (tid, method, url)
            assert response.json() == NOT_A_MEMBER
    # Bob's failed attempts changed nothing in tenant A.
    assert await member_ids(client, alice, tid_a) == [alice.id]


# --- listing members ---------------------------------------------------------


async def test_members_are_listed_in_join_order_with_user_fields(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("owen", tenant_name="O", tenant_slug="owens")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    zed = await make_user("zed")
    amy = await make_user("amy")
    added_zed = await add_member(client, owner, tid, user_id=zed.id)
    added_amy = await add_member(client, owner, tid, username="amy", role="admin")
    response = await client.get(f"/api/tenant/{tid}/member", headers=amy.headers)
    assert response.status_code == 200
    page = response.json()
    assert set(page) == PAGE_KEYS
    assert (page["total"], page["page"], page["per_page"], page["total_pages"]) == (3, 1, 25, 1)
    items = page["items"]
    assert all(set(item) == MEMBER_KEYS for item in items)
    # Join order, not alphabetical order.
    assert [(m["username"], m["display_name"], m["role"]) for m in items] == [
        ("owen", "Owen", "owner"),
        ("zed", "Zed", "member"),
        ("amy", "Amy", "admin"),
    ]
    assert items[1] == added_zed.json() and items[2] == added_amy.json()
    stamps = [datetime.fromisoformat(m["joined_at"]) for m in items]
    assert all(m["joined_at"].endswith("Z") for m in items)
    assert stamps == sorted(stamps) and all(s.utcoffset() is not None for s in stamps)
    assert len({m["id"] for m in items}) == 3


async def test_member_pagination_bounds(client: httpx.AsyncClient, make_user: Any) -> None:
    owner = await make_user("pam", tenant_name="P", tenant_slug="pams")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    for name in ["pa1", "pa2", "pa3", "pa4"]:
        user = await make_user(name)
        assert (await add_member(client, owner, tid, user_id=user.id)).status_code == 201
    url = f"/api/tenant/{tid}/member"
    for params in [{"per_page": 0}, {"per_page": 101}, {"page": 0}, {"per_page": "ten"}]:
        response = await client.get(url, headers=owner.headers, params=params)
        assert response.status_code == 422, params
        body = response.json()
        assert set(body) == {"error", "message"} and body["error"] == "validation"
        assert next(iter(params)) in body["message"]
    pages = []
    for number in (1, 2, 3):
        response = await client.get(
            url, headers=owner.headers, params={"page": number, "per_page": 2}
        )
        body = response.json()
        assert (body["total"], body["page"], body["per_page"], body["total_pages"]) == (
            5,
            number,
            2,
            3,
        )
        pages.append([m["username"] for m in body["items"]])
    assert pages == [["pam", "pa1"], ["pa2", "pa3"], ["pa4"]]
    beyond = await client.get(url, headers=owner.headers, params={"page": 9, "per_page": 2})
    assert beyond.status_code == 200
    assert beyond.json() == {"items": [], "total": 5, "page": 9, "per_page": 2, "total_pages": 3}
    huge = await client.get(url, headers=owner.headers, params={"page": 10**20})
    assert huge.status_code == 200
    assert (huge.json()["items"], huge.json()["total"]) == ([], 5)
    widest = await client.get(url, headers=owner.headers, params={"per_page": 100})
    assert widest.status_code == 200 and len(widest.json()["items"]) == 5
    narrowest = await client.get(url, headers=owner.headers, params={"per_page": 1})
    assert narrowest.json()["total_pages"] == 5 and len(narrowest.json()["items"]) == 1


# --- adding members ----------------------------------------------------------


async def test_add_member_by_user_id_username_or_email(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("ada", tenant_name="Ada", tenant_slug="adas")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    by_id, by_name, by_mail = (
        await make_user("ben"),
        await make_user("cleo"),
        await make_user("dan"),
    )
    responses = [
        await add_member(client, owner, tid, user_id=by_id.id),
        await add_member(client, owner, tid, username="CLEO", role="admin"),
        await add_member(client, owner, tid, email="Dan@Example.COM", role="member"),
    ]
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert [(r.json()["user_id"], r.json()["role"]) for r in responses] == [
        (by_id.id, "member"),
        (by_name.id, "admin"),
        (by_mail.id, "member"),
    ]
    assert all(set(r.json()) == MEMBER_KEYS for r in responses)
    # The new members can now see the tenant, with their own role.
    seen = await client.get(f"/api/tenant/{tid}", headers=by_name.headers)
    assert seen.status_code == 200 and seen.json()["role"] == "admin"
    assert [
        t["slug"] for t in (await client.get("/api/tenant", headers=by_mail.headers)).json()
    ] == ["adas"]


async def test_add_member_needs_exactly_one_identifier_and_a_known_role(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("ida", tenant_name="I", tenant_slug="idas")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    other = await make_user("jon")
    for body in [
        {},
        {"role": "member"},
        {"user_id": other.id, "username": "jon"},
        {"username": "jon", "email": other.email},
        {"user_id": other.id, "username": "jon", "email": other.email},
        {"user_id": "not-hex"},
        {"user_id": other.id.upper()},
        {"user_id": other.id, "role": "superuser"},
        {"username": "jon", "role": None},
        {"user_id": 12},
    ]:
        response = await add_member(client, owner, tid, **body)
        assert response.status_code == 422, body
        assert response.json()["error"] == "validation" and response.json()["message"]
    assert await member_ids(client, owner, tid) == [owner.id]


async def test_add_member_unknown_user_and_existing_member(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("kim", tenant_name="K", tenant_slug="kims")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    for body in [{"user_id": new_id()}, {"username": "ghost"}, {"email": "ghost@example.com"}]:
        response = await add_member(client, owner, tid, **body)
        assert response.status_code == 404, body
        assert response.json()["error"] == "not_found"
    lee = await make_user("lee")
    assert (await add_member(client, owner, tid, user_id=lee.id)).status_code == 201
    again = await add_member(client, owner, tid, username="lee", role="admin")
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    myself = await add_member(client, owner, tid, user_id=owner.id)
    assert myself.status_code == 409
    # The failed re-add did not change Lee's role.
    roles = {
        m["user_id"]: m["role"]
        for m in (await client.get(f"/api/tenant/{tid}/member", headers=owner.headers)).json()[
            "items"
        ]
    }
    assert roles == {owner.id: "owner", lee.id: "member"}


async def test_add_member_role_rules(client: httpx.AsyncClient, make_user: Any) -> None:
    owner = await make_user("max", tenant_name="M", tenant_slug="maxs")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    admin, member = await make_user("nia"), await make_user("oli")
    assert (await add_member(client, owner, tid, user_id=admin.id, role="admin")).status_code == 201
    assert (await add_member(client, owner, tid, user_id=member.id)).status_code == 201
    p1, p2, p3, p4 = [await make_user(n) for n in ("pia", "quin", "rex", "sue")]

    by_member = await add_member(client, member, tid, user_id=p1.id)
    assert by_member.status_code == 403 and by_member.json()["error"] == "forbidden"
    admin_grants_owner = await add_member(client, admin, tid, user_id=p1.id, role="owner")
    assert admin_grants_owner.status_code == 403
    assert p1.id not in await member_ids(client, owner, tid)

    admin_grants_admin = await add_member(client, admin, tid, user_id=p2.id, role="admin")
    admin_grants_member = await add_member(client, admin, tid, user_id=p3.id)
    owner_grants_owner = await add_member(client, owner, tid, user_id=p4.id, role="owner")
    assert [
        r.status_code for r in (admin_grants_admin, admin_grants_member, owner_grants_owner)
    ] == [
        201,
        201,
        201,
    ]
    assert owner_grants_owner.json()["role"] == "owner"
    # A second owner may in turn add members and grant ownership.
    assert (await add_member(client, p4, tid, user_id=p1.id, role="owner")).status_code == 201


# --- removing members --------------------------------------------------------


async def test_remove_member_permissions(client: httpx.AsyncClient, make_user: Any) -> None:
    owner = await make_user("uma", tenant_name="U", tenant_slug="umas")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    admin, m1, m2 = await make_user("vic"), await make_user("wes"), await make_user("xia")
    await add_member(client, owner, tid, user_id=admin.id, role="admin")
    await add_member(client, owner, tid, user_id=m1.id)
    await add_member(client, owner, tid, user_id=m2.id)

    by_member = await remove_member(client, m1, tid, m2.id)
    assert by_member.status_code == 403 and by_member.json()["error"] == "forbidden"
    admin_removes_owner = await remove_member(client, admin, tid, owner.id)
    assert admin_removes_owner.status_code == 403
    assert await member_ids(client, owner, tid) == [owner.id, admin.id, m1.id, m2.id]

    by_admin = await remove_member(client, admin, tid, m2.id)
    assert by_admin.status_code == 200 and by_admin.json() == {"removed": True}
    gone = await client.get(f"/api/tenant/{tid}", headers=m2.headers)
    assert gone.status_code == 403 and gone.json() == NOT_A_MEMBER
    assert (await client.get("/api/tenant", headers=m2.headers)).json() == []

    leaves = await remove_member(client, m1, tid, m1.id)
    assert leaves.status_code == 200 and leaves.json() == {"removed": True}
    admin_leaves = await remove_member(client, admin, tid, admin.id)
    assert admin_leaves.status_code == 200
    assert await member_ids(client, owner, tid) == [owner.id]


async def test_remove_non_member_is_404(client: httpx.AsyncClient, make_user: Any) -> None:
    owner = await make_user("yan", tenant_name="Y", tenant_slug="yans")
    outsider = await make_user("zoe", tenant_name="Z", tenant_slug="zoes")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    member = await make_user("abe")
    await add_member(client, owner, tid, user_id=member.id)
    # A user of another tenant, an unknown id, a malformed id: none is a member here.
    for user_id in [outsider.id, new_id(), "nope", owner.id.upper()]:
        response = await remove_member(client, owner, tid, user_id)
        assert response.status_code == 404, user_id
        assert response.json()["error"] == "not_found"
    assert (await remove_member(client, owner, tid, member.id)).status_code == 200
    twice = await remove_member(client, owner, tid, member.id)
    assert twice.status_code == 404
    # Removing from tenant Y did not touch the outsider's own tenant.
    outsider_tenants = (await client.get("/api/tenant", headers=outsider.headers)).json()
    assert [(t["slug"], t["role"]) for t in outsider_tenants] == [("zoes", "owner")]


async def test_last_owner_cannot_leave_or_be_removed(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    first = await make_user("bea", tenant_name="B", tenant_slug="beas")
    tid = (await client.get("/api/tenant", headers=first.headers)).json()[0]["id"]
    alone = await remove_member(client, first, tid, first.id)
    assert alone.status_code == 409 and alone.json()["error"] == "conflict"

    second = await make_user("cal")
    await add_member(client, first, tid, user_id=second.id, role="owner")
    # With two owners, the founding owner may leave; `owner_id` moves to the other owner.
    assert (await remove_member(client, first, tid, first.id)).status_code == 200
    tenant = (await client.get(f"/api/tenant/{tid}", headers=second.headers)).json()
    assert (tenant["owner_id"], tenant["role"]) == (second.id, "owner")
    assert (await remove_member(client, second, tid, second.id)).status_code == 409
    assert await member_ids(client, second, tid) == [second.id]

    # One owner removing another is fine while an owner remains.
    third = await make_user("dee")
    await add_member(client, second, tid, user_id=third.id, role="owner")
    assert (await remove_member(client, third, tid, second.id)).status_code == 200
    assert (await remove_member(client, third, tid, third.id)).status_code == 409
    assert (await client.get(f"/api/tenant/{tid}", headers=third.headers)).json()["owner_id"] == (
        third.id
    )


async def test_removal_drops_channel_memberships_in_that_tenant_only(
    app: Any, client: httpx.AsyncClient, make_user: Any
) -> None:
    owner = await make_user("eve", tenant_name="E", tenant_slug="eves")
    other_owner = await make_user("fay", tenant_name="F", tenant_slug="fays")
    member = await make_user("gus")
    tid = (await client.get("/api/tenant", headers=owner.headers)).json()[0]["id"]
    other_tid = (await client.get("/api/tenant", headers=other_owner.headers)).json()[0]["id"]
    await add_member(client, owner, tid, user_id=member.id)
    await add_member(client, other_owner, other_tid, user_id=member.id)

    async with app.state.ctx.sessions() as session:
        general = Channel(
            tenant_id=tid, name="general", path="general", created_by=owner.id, member_count=2
        )
        # A count already at zero (out of step with its rows) must not go negative.
        drifted = Channel(
            tenant_id=tid, name="drift", path="drift", created_by=owner.id, member_count=0
        )
        elsewhere = Channel(
            tenant_id=other_tid, name="x", path="x", created_by=other_owner.id, member_count=1
        )
        session.add_all([general, drifted, elsewhere])
        await session.flush()
        session.add_all(
            [
                ChannelMember(tenant_id=tid, channel_id=general.id, user_id=owner.id),
                ChannelMember(tenant_id=tid, channel_id=general.id, user_id=member.id),
                ChannelMember(tenant_id=tid, channel_id=drifted.id, user_id=member.id),
                ChannelMember(tenant_id=other_tid, channel_id=elsewhere.id, user_id=member.id),
            ]
        )
        await session.commit()
        ids = (general.id, drifted.id, elsewhere.id)

    assert (await remove_member(client, member, tid, member.id)).status_code == 200

    async with app.state.ctx.sessions() as session:
        counts = dict(
            (await session.execute(select(Channel.id, Channel.member_count))).tuples().all()
        )
        rows = set(
            (await session.execute(select(ChannelMember.channel_id, ChannelMember.user_id)))
            .tuples()
            .all()
        )
    assert [counts[i] for i in ids] == [1, 0, 1]
    assert rows == {(ids[0], owner.id), (ids[2], member.id)}
    # Still a member of the other tenant.
    assert [
        t["slug"] for t in (await client.get("/api/tenant", headers=member.headers)).json()
    ] == ["fays"]


async def test_two_owners_removing_each_other_at_once_leave_one_owner(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    for round_ in range(3):
        first = await make_user(f"race{round_}a", tenant_name="R", tenant_slug=f"race-{round_}")
        tid = (await client.get("/api/tenant", headers=first.headers)).json()[0]["id"]
        second = await make_user(f"race{round_}b")
        await add_member(client, first, tid, user_id=second.id, role="owner")
        results = await asyncio.gather(
            remove_member(client, first, tid, second.id),
            remove_member(client, second, tid, first.id),
        )
        # Whichever ran first succeeds; the other finds itself the last owner or gone.
        assert sorted(r.status_code for r in results) in ([200, 403], [200, 409]), [
            r.text for r in results
        ]
        remaining = [
            account
            for account in (first, second)
            if (await client.get(f"/api/tenant/{tid}", headers=account.headers)).status_code == 200
        ]
        assert len(remaining) == 1
        tenant = (await client.get(f"/api/tenant/{tid}", headers=remaining[0].headers)).json()
        assert (tenant["role"], tenant["owner_id"]) == ("owner", remaining[0].id)
