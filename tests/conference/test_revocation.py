"""Access that ends takes the user out of the media room at once (one node).

Bob is mid-call as a real ICE/DTLS/SRTP peer (tests/conference/peers.py) when he is
removed from the workspace, leaves or is removed from the private channel hosting the
call, or the channel is deleted. The same scenario on two nodes:
tests/cluster/test_revocation.py.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import delete

from roomler.db.models import ChannelMember
from tests.conference.conftest import Team, media_client, media_service, room_router
from tests.conference.revocation import (
    CHANNEL_DELETED,
    REVOCATIONS,
    MidCall,
    Rest,
    Revocation,
    assert_revoked,
    assert_transports_closed,
    mid_call,
    next_media,
    private_conference,
    refused,
)
from tests.realtime.conftest import LiveServer


async def started_mid_call(
    team: Team, server: LiveServer, http: httpx.AsyncClient
) -> tuple[Rest, str, MidCall]:
    rest = Rest(http, team.api.tenant_id)
    channel_id, conference_id = await private_conference(rest, team.owner, team.alice, team.bob)
    clients = [await media_client(server, user) for user in (team.owner, team.alice, team.bob)]
    return rest, channel_id, await mid_call(conference_id, *clients)


async def transport_ids(server: LiveServer, conference_id: str) -> list[str]:
    router = await room_router(server, conference_id)
    dump = await server.call(router.dump)
    return list(dump["transportIds"])


@pytest.mark.parametrize("revocation", REVOCATIONS, ids=lambda r: r.name)
async def test_a_revoked_user_leaves_the_room_and_the_others_carry_on(
    revocation: Revocation, team: Team, server: LiveServer, http: httpx.AsyncClient
) -> None:
    rest, channel_id, call = await started_mid_call(team, server, http)
    try:
        assert len(await transport_ids(server, call.conference_id)) == 6
        await revocation.act(rest, channel_id, team.owner, team.bob)
        await assert_revoked(call, team.bob, revocation.reason)
        # The worker holds only the others' transports.
        assert len(await transport_ids(server, call.conference_id)) == 4
    finally:
        call.close()


async def test_deleting_the_channel_ends_its_call_for_everyone(
    team: Team, server: LiveServer, http: httpx.AsyncClient
) -> None:
    rest, channel_id, call = await started_mid_call(team, server, http)
    try:
        await CHANNEL_DELETED.act(rest, channel_id, team.owner, team.bob)
        for client in (call.owner, call.alice, call.bob):
            assert await next_media(client) == {
                "type": "media:room_closed",
                "data": {"conference_id": call.conference_id, "reason": "channel_deleted"},
            }
        await assert_transports_closed(*call.peers, ports=call.bob_ports)
        for client in (call.owner, call.bob):
            error = await refused(client, "media:join")
            assert error["message"] == f"conference {call.conference_id} is ended, not in progress"
        conference = await rest.ok(team.owner, "GET", f"/conference/{call.conference_id}")
        assert conference["status"] == "ended" and conference["participant_count"] == 0
    finally:
        call.close()


async def test_leaving_a_public_channel_or_the_organizer_leaving_keeps_the_call(
    team: Team, server: LiveServer, http: httpx.AsyncClient
) -> None:
    """Only access that really ends counts: the same rule as joining."""
    rest = Rest(http, team.api.tenant_id)
    channel_id, conference_id = await private_conference(rest, team.owner, team.alice)
    public = await rest.ok(team.owner, "POST", "/channel", {"name": "open"})
    await rest.ok(team.alice, "POST", f"/channel/{public['id']}/join")
    lobby = await rest.ok(
        team.owner, "POST", "/conference", {"subject": "Open", "channel_id": public["id"]}
    )
    await rest.ok(team.owner, "POST", f"/conference/{lobby['id']}/start")
    owner = await media_client(server, team.owner, conference_id)
    alice = await media_client(server, team.alice, lobby["id"])
    await owner.join()
    await alice.join()

    await rest.ok(team.alice, "POST", f"/channel/{public['id']}/leave")
    await rest.ok(team.owner, "POST", f"/channel/{channel_id}/leave")  # the organizer

    assert await owner.drain() == [] and await alice.drain() == []
    await owner.request("media:leave", "media:peer_left")
    await alice.request("media:leave", "media:peer_left")


async def test_removing_a_channel_member_is_for_managers_and_the_member(
    team: Team, http: httpx.AsyncClient
) -> None:
    rest = Rest(http, team.api.tenant_id)
    channel_id, _ = await private_conference(rest, team.owner, team.alice, team.bob)
    path = f"/api/tenant/{team.api.tenant_id}/channel/{channel_id}/member"

    response = await http.delete(f"{path}/{team.bob.id}", headers=team.alice.headers)
    assert response.status_code == 403, response.text
    assert (await http.delete(f"{path}/{team.alice.id}", headers=team.alice.headers)).json() == {
        "removed": True
    }
    assert (await http.delete(f"{path}/{team.bob.id}", headers=team.owner.headers)).json() == {
        "removed": True
    }
    for gone in (team.bob.id, "not-an-id"):
        response = await http.delete(f"{path}/{gone}", headers=team.owner.headers)
        assert response.status_code == 404, response.text
        assert response.json()["error"] == "not_found"
    members = await rest.ok(team.owner, "GET", f"/channel/{channel_id}/member")
    assert [m["user_id"] for m in members["items"]] == [team.owner.id]
    channel = await rest.ok(team.owner, "GET", f"/channel/{channel_id}")
    assert channel["member_count"] == 1


async def test_a_join_under_way_when_access_ends_is_refused(
    team: Team, server: LiveServer, http: httpx.AsyncClient
) -> None:
    """Bob's join passed the access check; the revocation lands while his transports are
    being made: the join checks again and is refused, his transports closed."""
    rest = Rest(http, team.api.tenant_id)
    channel_id, conference_id = await private_conference(rest, team.owner, team.bob)
    owner = await media_client(server, team.owner, conference_id)
    await owner.join()
    media = media_service(server)
    create_transports = media.rooms.create_transports

    async def revoked_meanwhile(*args: Any, **kwargs: Any) -> Any:
        async with media.sessions() as session:  # what `POST .../leave` commits
            await session.execute(
                delete(ChannelMember).where(
                    ChannelMember.channel_id == channel_id, ChannelMember.user_id == team.bob.id
                )
            )
            await session.commit()
        await media.revoke(conference_id, team.bob.id, "access_revoked")
        return await create_transports(*args, **kwargs)

    def patch() -> None:
        media.rooms.create_transports = revoked_meanwhile  # type: ignore[method-assign]

    await server.call(patch)
    bob = await media_client(server, team.bob, conference_id)
    error = await refused(bob, "media:join")
    assert error["message"] == f"unknown conference {conference_id}"
    assert len(await transport_ids(server, conference_id)) == 2  # the owner's only
    assert await owner.drain() == []
