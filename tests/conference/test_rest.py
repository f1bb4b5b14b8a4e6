"""`/api/tenant/{tid}/conference`: the lifecycle, status codes, counts and isolation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conference.conftest import (
    MEETING_CODE,
    Api,
    Team,
    media_service,
    router_dump,
)
from tests.realtime.conftest import LiveServer, add_channel, add_tenant, open_client


async def test_create_answers_the_new_conference(team: Team) -> None:
    created = await team.api.create(team.alice, subject="  Weekly sync ")

    assert MEETING_CODE.match(created["meeting_code"]), created
    assert created["subject"] == "Weekly sync"
    assert created["status"] == "scheduled"
    assert created["conference_type"] == "instant"
    assert created["organizer_id"] == team.alice.id
    assert created["channel_id"] is None
    assert created["participant_count"] == 0
    assert created["join_url"] == f"/tenant/{team.api.tenant_id}/conference/{created['id']}"
    assert created["created_at"].endswith("Z")
    fetched = await team.api.ok(team.bob, "GET", f"/{created['id']}")
    assert fetched == created


async def test_meeting_codes_differ(team: Team) -> None:
    codes = {(await team.api.create(team.alice))["meeting_code"] for _ in range(5)}
    assert len(codes) == 5


async def test_scheduled_conference_keeps_its_time(team: Team) -> None:
    when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    created = await team.api.create(
        team.alice, conference_type="scheduled", scheduled_at=when.isoformat()
    )
    assert created["conference_type"] == "scheduled"
    assert created["scheduled_at"] == "2030-01-02T03:04:05Z"


async def test_invalid_bodies_are_422_naming_the_field(team: Team) -> None:
    cases = [
        ({"subject": "   "}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"subject": "x", "conference_type": "webinar"}, "conference_type"),
        ({"subject": "x", "conference_type": "scheduled"}, "scheduled_at"),
        ({"subject": "x", "scheduled_at": "2030-01-02T03:04:05"}, "scheduled_at"),
    ]
    for body, field in cases:
        response = await team.api.call(team.alice, "POST", "", body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"] == "validation"
        assert field in response.json()["message"], response.json()


async def test_channel_must_be_visible_in_the_tenant(
    team: Team, db: AsyncEngine, server: LiveServer
) -> None:
    foreign_tenant = await add_tenant(db, team.eve)
    foreign_channel = await add_channel(db, foreign_tenant, team.eve)
    response = await team.api.call(
        team.alice, "POST", "", {"subject": "x", "channel_id": foreign_channel}
    )
    assert response.status_code == 404
    assert response.json() == {"error": "not_found", "message": "Channel not found"}

    channel = await add_channel(db, team.api.tenant_id, team.bob)
    created = await team.api.create(team.alice, channel_id=channel)
    assert created["channel_id"] == channel


async def test_list_is_paginated_newest_first(team: Team) -> None:
    ids = [(await team.api.create(team.alice, subject=f"c{i}"))["id"] for i in range(3)]

    page = await team.api.ok(team.bob, "GET", "?per_page=2")
    assert [c["id"] for c in page["items"]] == [ids[2], ids[1]]
    assert (page["total"], page["page"], page["per_page"], page["total_pages"]) == (3, 1, 2, 2)
    second = await team.api.ok(team.bob, "GET", "?per_page=2&page=2")
    assert [c["id"] for c in second["items"]] == [ids[0]]
    bad = await team.api.call(team.bob, "GET", "", per_page=0)
    assert bad.status_code == 422


async def test_other_tenants_see_nothing(team: Team, db: AsyncEngine) -> None:
    conference = await team.api.create(team.alice)
    path = f"/{conference['id']}"

    # Eve is not a member of the tenant at all: 403 on every route.
    for method, suffix in [("GET", ""), ("GET", path), ("POST", f"{path}/start")]:
        response = await team.api.call(team.eve, method, suffix)
        assert response.status_code == 403, (method, suffix, response.text)
        assert response.json()["error"] == "forbidden"
    # In her own tenant, the conference id does not exist.
    eve_api = Api(team.api.http, await add_tenant(db, team.eve))
    for method, suffix in [
        ("GET", path),
        ("POST", f"{path}/start"),
        ("POST", f"{path}/join"),
        ("POST", f"{path}/leave"),
        ("POST", f"{path}/end"),
        ("GET", f"{path}/participant"),
    ]:
        response = await eve_api.call(team.eve, method, suffix)
        assert response.status_code == 404, (method, suffix, response.text)
        assert response.json() == {"error": "not_found", "message": "Conference not found"}
    assert (await eve_api.ok(team.eve, "GET"))["total"] == 0
    malformed = await team.api.call(team.alice, "GET", "/not-an-id")
    assert malformed.status_code == 404


async def test_private_channel_conferences_are_hidden_from_outsiders(
    team: Team, db: AsyncEngine
) -> None:
    from sqlalchemy import update

    from roomler.db.models import Channel

    channel = await add_channel(db, team.api.tenant_id, team.alice)
    async with db.begin() as connection:
        await connection.execute(
            update(Channel).where(Channel.id == channel).values(is_private=True)
        )
    hidden = await team.api.create(team.alice, channel_id=channel)
    shown = await team.api.create(team.alice)

    listed = await team.api.ok(team.bob, "GET")
    assert [c["id"] for c in listed["items"]] == [shown["id"]]
    response = await team.api.call(team.bob, "GET", f"/{hidden['id']}")
    assert response.status_code == 404
    assert (await team.api.ok(team.alice, "GET"))["total"] == 2


async def test_start_places_a_router_and_is_idempotent(team: Team, server: LiveServer) -> None:
    conference = await team.api.create(team.alice)
    path = f"/{conference['id']}"

    first = await team.api.ok(team.alice, "POST", f"{path}/start")
    assert first["started"] is True
    mime_types = {codec["mimeType"] for codec in first["rtp_capabilities"]["codecs"]}
    assert {"audio/opus", "video/VP8"} <= mime_types
    again = await team.api.ok(team.bob, "POST", f"{path}/start")
    assert again == first

    fetched = await team.api.ok(team.alice, "GET", path)
    assert fetched["status"] == "in_progress"
    assert fetched["started_at"] is not None
    dump = await router_dump(server, conference["id"])
    assert dump["transportIds"] == []


async def test_concurrent_starts_make_one_router(team: Team, server: LiveServer) -> None:
    conference = await team.api.create(team.alice)
    path = f"/{conference['id']}/start"

    results = await asyncio.gather(*(team.api.ok(team.alice, "POST", path) for _ in range(4)))

    assert all(result == results[0] for result in results)

    def router_count() -> int:
        pool = media_service(server)._pool
        assert pool is not None
        return sum(len(worker.routers) for worker in pool.workers)

    assert await server.call(router_count) == 1


async def test_join_needs_a_started_conference(team: Team) -> None:
    conference = await team.api.create(team.alice)
    response = await team.api.call(team.bob, "POST", f"/{conference['id']}/join")
    assert response.status_code == 409
    assert response.json() == {
        "error": "conflict",
        "message": "The conference is scheduled, not in progress",
    }


async def test_participant_count_counts_present_users(team: Team) -> None:
    conference_id = await team.api.started(team.alice)
    path = f"/{conference_id}"

    async def count() -> int:
        return int((await team.api.ok(team.alice, "GET", path))["participant_count"])

    first = await team.api.ok(team.bob, "POST", f"{path}/join")
    assert first["joined"] is True
    again = await team.api.ok(team.bob, "POST", f"{path}/join")
    assert again["participant_id"] == first["participant_id"]
    assert await count() == 1
    await team.api.ok(team.alice, "POST", f"{path}/join")
    assert await count() == 2
    listed = await team.api.ok(team.alice, "GET")
    assert listed["items"][0]["participant_count"] == 2

    assert await team.api.ok(team.bob, "POST", f"{path}/leave") == {"left": True}
    assert await team.api.ok(team.bob, "POST", f"{path}/leave") == {"left": True}
    assert await team.api.ok(team.owner, "POST", f"{path}/leave") == {"left": True}
    assert await count() == 1
    await team.api.ok(team.alice, "POST", f"{path}/leave")
    await team.api.ok(team.alice, "POST", f"{path}/leave")
    assert await count() == 0


async def test_concurrent_joins_of_one_user_share_one_record(team: Team) -> None:
    conference_id = await team.api.started(team.alice)
    path = f"/{conference_id}/join"
    results = await asyncio.gather(*(team.api.ok(team.bob, "POST", path) for _ in range(5)))
    assert len({r["participant_id"] for r in results}) == 1
    records = await team.api.ok(team.bob, "GET", f"/{conference_id}/participant")
    assert len(records) == 1


async def test_participant_records_keep_every_stay(team: Team) -> None:
    conference_id = await team.api.started(team.alice)
    path = f"/{conference_id}"
    first = await team.api.ok(team.bob, "POST", f"{path}/join")
    await team.api.ok(team.bob, "POST", f"{path}/leave")
    second = await team.api.ok(team.bob, "POST", f"{path}/join")
    await team.api.ok(team.alice, "POST", f"{path}/join")

    records = await team.api.ok(team.alice, "GET", f"{path}/participant")

    assert [r["id"] for r in records[:2]] == [first["participant_id"], second["participant_id"]]
    left, present, alice = records
    assert (left["user_id"], left["display_name"], left["is_present"]) == (
        team.bob.id,
        "Bob",
        False,
    )
    assert left["left_at"] is not None and left["left_at"] >= left["joined_at"]
    assert (present["is_present"], present["left_at"]) == (True, None)
    assert (alice["user_id"], alice["display_name"]) == (team.alice.id, "Alice")


async def test_end_needs_the_organizer_or_an_admin(team: Team) -> None:
    conference_id = await team.api.started(team.alice)
    response = await team.api.call(team.bob, "POST", f"/{conference_id}/end")
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert await team.api.ok(team.owner, "POST", f"/{conference_id}/end") == {"ended": True}

    other = await team.api.started(team.bob)
    assert await team.api.ok(team.bob, "POST", f"/{other}/end") == {"ended": True}


async def test_end_closes_everything_and_is_final(team: Team, server: LiveServer) -> None:
    conference_id = await team.api.started(team.alice)
    path = f"/{conference_id}"
    await team.api.ok(team.bob, "POST", f"{path}/join")

    assert await team.api.ok(team.alice, "POST", f"{path}/end") == {"ended": True}

    fetched = await team.api.ok(team.alice, "GET", path)
    assert (fetched["status"], fetched["participant_count"]) == ("ended", 0)
    assert fetched["ended_at"] is not None
    records = await team.api.ok(team.alice, "GET", f"{path}/participant")
    assert [r["is_present"] for r in records] == [False]
    for action in ("start", "join"):
        response = await team.api.call(team.alice, "POST", f"{path}/{action}")
        assert response.status_code == 409, action
        assert response.json()["error"] == "conflict"
    assert await team.api.ok(team.alice, "POST", f"{path}/end") == {"ended": True}
    assert await team.api.ok(team.bob, "POST", f"{path}/leave") == {"left": True}
    assert await server.call(lambda: media_service(server).rooms.get_room(conference_id)) is None


async def test_a_scheduled_conference_can_end_without_starting(team: Team) -> None:
    created = await team.api.create(team.alice)
    assert await team.api.ok(team.alice, "POST", f"/{created['id']}/end") == {"ended": True}
    assert (await team.api.ok(team.alice, "GET", f"/{created['id']}"))["status"] == "ended"


async def test_channel_members_hear_start_and_end(
    team: Team, db: AsyncEngine, server: LiveServer
) -> None:
    channel = await add_channel(db, team.api.tenant_id, team.alice, team.bob)
    bob = await open_client(server, team.bob)
    owner = await open_client(server, team.owner)  # in the tenant, not in the channel
    conference = await team.api.create(team.alice, channel_id=channel, subject="Design review")

    await team.api.ok(team.alice, "POST", f"/{conference['id']}/start")
    await team.api.ok(team.alice, "POST", f"/{conference['id']}/start")  # no second event
    await team.api.ok(team.owner, "POST", f"/{conference['id']}/end")

    frames = [f for f in await bob.drain() if f["type"].startswith("conference:")]
    assert frames == [
        {
            "type": "conference:started",
            "data": {
                "conference_id": conference["id"],
                "channel_id": channel,
                "subject": "Design review",
                "started_by": team.alice.id,
            },
        },
        {
            "type": "conference:ended",
            "data": {
                "conference_id": conference["id"],
                "channel_id": channel,
                "subject": "Design review",
                "ended_by": team.owner.id,
            },
        },
    ]
    assert not [f for f in await owner.drain() if f["type"].startswith("conference:")]
    await bob.close()
    await owner.close()


async def test_an_unstarted_server_forks_no_workers(team: Team, server: LiveServer) -> None:
    await team.api.create(
        team.alice, scheduled_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()
    )
    assert await server.call(lambda: media_service(server).pool_started) is False
