"""Tenant isolation: nothing of tenant A can be read, written, joined or listed from tenant B."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.api.test_channels import add_to_tenant, create_channel, make_tenant
from tests.conftest import Account


@dataclass
class TwoTenants:
    a_tid: str
    a_owner: Account
    a_public: str
    a_private: str
    a_message: str
    a_reply: str
    b_tid: str
    b_owner: Account
    b_channel: str
    both: Account  # a member of both tenants

    def a_ids(self) -> list[str]:
        return [self.a_public, self.a_private, self.a_message, self.a_reply, self.a_owner.id]


@pytest.fixture
async def tenants(client: httpx.AsyncClient, app: Any, make_user: Any) -> TwoTenants:
    a_owner, a_tid = await make_tenant(app, make_user, "alpha", "tenant-a")
    b_owner, b_tid = await make_tenant(app, make_user, "bravo", "tenant-b")
    both = await make_user("bridget")
    await add_to_tenant(app, a_tid, both)
    await add_to_tenant(app, b_tid, both, role="admin")
    public = await create_channel(client, a_owner, a_tid, "announcements", purpose="news")
    private = await create_channel(client, a_owner, a_tid, "vault", is_private=True)
    join = await client.post(
        f"/api/tenant/{a_tid}/channel/{public['id']}/join", headers=both.headers
    )
    assert join.status_code == 200
    url = f"/api/tenant/{a_tid}/channel/{public['id']}/message"
    message = await client.post(url, headers=a_owner.headers, json={"content": "secret plan"})
    reply = await client.post(
        url, headers=a_owner.headers, json={"content": "step 1", "thread_id": message.json()["id"]}
    )
    assert message.status_code == reply.status_code == 201
    b_channel = await create_channel(client, b_owner, b_tid, "announcements", purpose="news")
    return TwoTenants(
        a_tid=a_tid,
        a_owner=a_owner,
        a_public=public["id"],
        a_private=private["id"],
        a_message=message.json()["id"],
        a_reply=reply.json()["id"],
        b_tid=b_tid,
        b_owner=b_owner,
        b_channel=b_channel["id"],
        both=both,
    )


def channel_routes(tid: str, cid: str, mid: str) -> list[tuple[str, str]]:
    base = f"/api/tenant/{tid}/channel/{cid}"
    return [
        ("GET", base),
        ("PUT", base),
        ("DELETE", base),
        ("POST", f"{base}/join"),
        ("POST", f"{base}/leave"),
        ("GET", f"{base}/member"),
        ("POST", f"{base}/member"),
        ("GET", f"{base}/message"),
        ("POST", f"{base}/message"),
        ("PUT", f"{base}/message/{mid}"),
        ("DELETE", f"{base}/message/{mid}"),
        ("GET", f"{base}/message/{mid}/thread"),
    ]


BODY = {"name": "stolen", "content": "intrusion", "user_id": "0" * 24}


async def test_outsider_gets_403_on_every_route_of_the_other_tenant(
    client: httpx.AsyncClient, tenants: TwoTenants
) -> None:
    t = tenants
    routes = [
        ("GET", f"/api/tenant/{t.a_tid}/channel"),
        ("POST", f"/api/tenant/{t.a_tid}/channel"),
        ("GET", f"/api/tenant/{t.a_tid}/channel/explore"),
    ]
    for cid in (t.a_public, t.a_private, t.b_channel):
        routes += channel_routes(t.a_tid, cid, t.a_message)
    for method, url in routes:
        response = await client.request(method, url, headers=t.b_owner.headers, json=BODY)
        assert response.status_code == 403, (method, url, response.text)
        assert response.json()["error"] == "forbidden"
        assert "secret plan" not in response.text


async def test_ids_of_the_other_tenant_are_404_inside_ones_own_tenant(
    client: httpx.AsyncClient, tenants: TwoTenants
) -> None:
    t = tenants
    # `both` may see A's channel through A, yet not through B's routes.
    for who in (t.b_owner, t.both):
        for cid in (t.a_public, t.a_private):
            for method, url in channel_routes(t.b_tid, cid, t.a_message):
                response = await client.request(method, url, headers=who.headers, json=BODY)
                assert response.status_code == 404, (who.username, method, url)
        # A's message under B's own channel.
        own = f"/api/tenant/{t.b_tid}/channel/{t.b_channel}/message/{t.a_message}"
        for method, url in [("PUT", own), ("DELETE", own), ("GET", f"{own}/thread")]:
            response = await client.request(method, url, headers=who.headers, json=BODY)
            assert response.status_code == 404, (who.username, method, url)
        listed = await client.get(
            f"/api/tenant/{t.b_tid}/channel/{t.b_channel}/message",
            headers=who.headers,
            params={"before": t.a_message},
        )
        assert listed.status_code == 404


async def test_other_tenants_resources_cannot_be_referenced(
    client: httpx.AsyncClient, tenants: TwoTenants
) -> None:
    t = tenants
    child = await client.post(
        f"/api/tenant/{t.b_tid}/channel",
        headers=t.b_owner.headers,
        json={"name": "inside", "parent_id": t.a_public},
    )
    assert child.status_code == 404
    b_url = f"/api/tenant/{t.b_tid}/channel/{t.b_channel}/message"
    for field_name in ("thread_id", "referenced_message_id"):
        response = await client.post(
            b_url, headers=t.b_owner.headers, json={"content": "x", field_name: t.a_message}
        )
        assert response.status_code == 422, field_name
    added = await client.post(
        f"/api/tenant/{t.b_tid}/channel/{t.b_channel}/member",
        headers=t.b_owner.headers,
        json={"user_id": t.a_owner.id},
    )
    assert added.status_code == 404


async def test_nothing_of_a_appears_in_bs_lists(
    client: httpx.AsyncClient, tenants: TwoTenants
) -> None:
    t = tenants
    posted = await client.post(
        f"/api/tenant/{t.b_tid}/channel/{t.b_channel}/message",
        headers=t.b_owner.headers,
        json={"content": "b's own"},
    )
    assert posted.status_code == 201
    base = f"/api/tenant/{t.b_tid}/channel"
    lists = [
        (base, {}),
        (f"{base}/explore", {}),
        (f"{base}/explore", {"q": "news"}),
        (f"{base}/explore", {"q": "vault"}),
        (f"{base}/{t.b_channel}/member", {}),
        (f"{base}/{t.b_channel}/message", {}),
        (f"{base}/{t.b_channel}/message/{posted.json()['id']}/thread", {}),
    ]
    for who in (t.b_owner, t.both):
        for url, params in lists:
            response = await client.get(url, headers=who.headers, params=params)
            assert response.status_code == 200, url
            text = json.dumps(response.json())
            for a_id in t.a_ids():
                assert a_id not in text, (who.username, url, a_id)
            assert "secret plan" not in text and "vault" not in text
    channels = (await client.get(base, headers=t.both.headers)).json()
    assert [c["id"] for c in channels] == [t.b_channel]
    explore = (await client.get(f"{base}/explore", headers=t.both.headers)).json()
    assert [c["id"] for c in explore] == [t.b_channel] and explore[0]["member_count"] == 1
    # Same path in both tenants: paths are unique per tenant only.
    assert channels[0]["path"] == "announcements"


async def test_a_is_unchanged_after_bs_attempts(
    client: httpx.AsyncClient, tenants: TwoTenants
) -> None:
    t = tenants
    for method, url in channel_routes(t.b_tid, t.a_public, t.a_message):
        await client.request(method, url, headers=t.b_owner.headers, json=BODY)
    for method, url in channel_routes(t.a_tid, t.a_public, t.a_message):
        await client.request(method, url, headers=t.b_owner.headers, json=BODY)
    a_base = f"/api/tenant/{t.a_tid}/channel"
    channels = (await client.get(a_base, headers=t.a_owner.headers)).json()
    assert [(c["name"], c["member_count"]) for c in channels] == [
        ("announcements", 2),
        ("vault", 1),
    ]
    history = (await client.get(f"{a_base}/{t.a_public}/message", headers=t.a_owner.headers)).json()
    assert [(m["content"], m["is_edited"]) for m in history["items"]] == [("secret plan", False)]
    thread = await client.get(
        f"{a_base}/{t.a_public}/message/{t.a_message}/thread", headers=t.a_owner.headers
    )
    assert [m["id"] for m in thread.json()] == [t.a_reply]
