"""Recording a conference (issue 17 item 4): who may start, stop, list and download.

Alice starts the conference (its organizer), the owner owns the workspace, Bob is a plain
member, Eve is outside it. The media itself is recorded in tests/web/test_call_recording.py
(two Chromium pages) and tests/recording/ (the depacketizers and the writer).
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from roomler.db.models import Channel, Recording
from roomler.files.storage import stream
from tests.conference.conftest import MediaClient, Team, join_all, media_client
from tests.realtime.conftest import LiveServer, add_channel


async def _room(team: Team, server: LiveServer) -> tuple[str, MediaClient, MediaClient]:
    conference_id = await team.api.started(team.alice)
    alice = await media_client(server, team.alice, conference_id)
    bob = await media_client(server, team.bob, conference_id)
    await join_all(alice, bob)
    return conference_id, alice, bob


async def test_only_moderators_start_and_stop_and_the_room_hears_it(
    team: Team, server: LiveServer
) -> None:
    conference_id, alice, bob = await _room(team, server)
    path = f"/{conference_id}/recording"

    refused = await team.api.call(team.bob, "POST", f"{path}/start")
    assert refused.status_code == 403, refused.text
    assert "organizer" in refused.json()["message"]
    assert (await team.api.call(team.eve, "POST", f"{path}/start")).status_code in (403, 404)
    assert (await team.api.ok(team.bob, "GET", path))["recording"] is False

    started = await team.api.ok(team.alice, "POST", f"{path}/start")
    assert started["recording"] is True and started["started_by"] == team.alice.id
    expected = {"conference_id": conference_id, "started_by": team.alice.id}
    for client in (alice, bob):
        assert await client.drain() == [{"type": "media:recording_started", "data": expected}]
    # A second start is the same recording; members see that it runs.
    again = await team.api.ok(team.owner, "POST", f"{path}/start")
    assert again["run_id"] == started["run_id"]
    listing = await team.api.ok(team.bob, "GET", path)
    assert listing == {"recording": True, "started_by": team.alice.id, "recordings": []}

    assert (await team.api.call(team.bob, "POST", f"{path}/stop")).status_code == 403
    stopped = await team.api.ok(team.owner, "POST", f"{path}/stop")  # a workspace owner may
    assert stopped == {"recording": False, "recordings": []}  # nobody was producing
    for client in (alice, bob):
        (frame,) = await client.drain()
        assert frame["type"] == "media:recording_stopped"
        assert frame["data"]["stopped_by"] == team.owner.id
    gone = await team.api.call(team.alice, "POST", f"{path}/stop")
    assert gone.status_code == 409, gone.text
    await alice.close()
    await bob.close()


async def test_a_conference_not_running_here_cannot_be_recorded(team: Team) -> None:
    created = await team.api.create(team.alice)
    response = await team.api.call(team.alice, "POST", f"/{created['id']}/recording/start")
    assert response.status_code == 409, response.text


async def test_recordings_are_downloaded_by_those_who_see_the_conference(
    team: Team, server: LiveServer, db: AsyncEngine
) -> None:
    # A conference in a channel only Alice and Bob are in, with one stored recording.
    channel = await add_channel(db, team.api.tenant_id, team.alice, team.bob)
    async with db.begin() as connection:
        await connection.execute(
            update(Channel).where(Channel.id == channel).values(is_private=True)
        )
    conference = await team.api.create(team.alice, channel_id=channel)
    context = server.app.server.context
    body = b"\x1a\x45\xdf\xa3 not really a webm"

    async def store() -> str:
        async with context.sessions() as session:
            row = Recording(
                conference_id=conference["id"],
                run_id="r1",
                started_by=team.alice.id,
                user_id=team.alice.id,
                producer_id="p1",
                kind="video",
                content_type="video/webm",
                size=len(body),
                frames=1,
                duration_ms=0,
                offset_ms=0,
            )
            session.add(row)
            await session.flush()
            await context.storage.put(row.id, stream(body))
            await session.commit()
            return row.id

    recording_id = await server.call(store)

    path = f"/{conference['id']}/recording"
    listing = await team.api.ok(team.bob, "GET", path)
    assert [r["id"] for r in listing["recordings"]] == [recording_id]
    download = await team.api.call(team.bob, "GET", f"{path}/{recording_id}")
    assert download.status_code == 200
    assert download.content == body
    assert download.headers["content-type"] == "video/webm"
    assert download.headers["content-disposition"].startswith("attachment;")
    # Eve is outside the workspace (403, as for all of it); the owner is in it but not in
    # the conference's private channel (404, as for the channel's files).
    for where in (f"{path}/{recording_id}", path):
        assert (await team.api.call(team.eve, "GET", where)).status_code == 403
        assert (await team.api.call(team.owner, "GET", where)).status_code == 404
    # A recording of another conference is not this one's.
    other = await team.api.create(team.alice)
    missing = await team.api.call(team.alice, "GET", f"/{other['id']}/recording/{recording_id}")
    assert missing.status_code == 404
