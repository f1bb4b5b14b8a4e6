"""Files (issue 18 item 6): uploads into a channel, attached to messages, read as the
channel is, images with a server-made thumbnail, the size limit, deleted with their message."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import func, select, update

from roomler.app import create_app
from roomler.config import Settings
from roomler.db.models import FileChunk, StoredFile, utcnow
from roomler.files.storage import DatabaseStorage, ObjectNotFound, stream
from tests.api.test_channels import create_channel
from tests.api.test_messages import RecordingPublisher, Room, page, post
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_messages import room as room  # noqa: F401 (fixture)
from tests.conftest import Account

LIMIT = 300_000


@pytest.fixture(params=["local", "database"])
def settings(settings: Settings, request: pytest.FixtureRequest) -> Settings:
    """Every test once with files on disk and once in the database (PostgreSQL in the
    PostgreSQL run: the storage every node of a cluster reaches)."""
    settings.files.max_bytes = LIMIT
    settings.files.storage = request.param
    return settings


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height), (200, 30, 30) if mode == "RGB" else (0, 0, 0, 0)).save(
        out, "PNG"
    )
    return out.getvalue()


def files_url(room: Room, cid: str | None = None) -> str:
    return f"/api/tenant/{room.tid}/channel/{cid or room.cid}/file"


async def upload(
    client: httpx.AsyncClient,
    room: Room,
    who: Account,
    name: str,
    data: bytes,
    content_type: str = "application/octet-stream",
    *,
    cid: str | None = None,
    status: int = 201,
) -> dict[str, Any]:
    response = await client.post(
        files_url(room, cid),
        params={"name": name},
        content=data,
        headers=who.headers | {"content-type": content_type},
    )
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def stored_objects(app: Any, data_dir: Path) -> list[str]:
    if app.state.ctx.settings.files.storage == "local":
        directory = data_dir / "files"
        return sorted(p.name for p in directory.iterdir()) if directory.exists() else []
    return ["database"]  # counted through the rows below


async def test_an_image_is_attached_shown_inline_and_thumbnailed(
    client: httpx.AsyncClient, room: Room, recorder: RecordingPublisher
) -> None:
    picture = png(1200, 800)
    up = await upload(client, room, room.alice, "photo.png", picture, "image/png")
    assert up["is_image"] is True and (up["width"], up["height"]) == (1200, 800)
    assert up["size"] == len(picture) and up["content_type"] == "image/png"
    assert up["message_id"] is None and up["thumbnail_url"] == up["url"] + "/thumbnail"
    message = await post(client, room, room.alice, "", attachment_ids=[up["id"]])
    assert message["content"] == "" and [a["id"] for a in message["attachments"]] == [up["id"]]
    assert message["attachments"][0]["message_id"] == message["id"]
    # The event carries the files, to the channel's other members.
    created = [p for p in recorder.published if p.event_type == "message:create"]
    assert created[-1].data["attachments"] == message["attachments"]
    assert (await page(client, room, room.bob))["items"][0]["attachments"] == message["attachments"]
    got = await client.get(up["url"], headers=room.bob.headers)
    assert got.status_code == 200 and got.content == picture
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("inline;")
    assert got.headers["x-content-type-options"] == "nosniff"
    thumb = await client.get(up["thumbnail_url"], headers=room.bob.headers)
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (360, 240)
    forced = await client.get(up["url"], headers=room.bob.headers, params={"download": "true"})
    assert forced.headers["content-disposition"].startswith("attachment;")
    # A transparent image keeps its transparency in a PNG thumbnail.
    clear = await upload(client, room, room.bob, "clear.png", png(50, 20, "RGBA"))
    thumb = await client.get(clear["thumbnail_url"], headers=room.bob.headers)
    assert thumb.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(thumb.content)).size == (50, 20)


async def test_other_files_are_only_ever_downloads(client: httpx.AsyncClient, room: Room) -> None:
    page_html = b"<html><script>alert(document.cookie)</script></html>"
    up = await upload(
        client, room, room.alice, '../../etc/Ré sumé "x".html', page_html, "text/html"
    )
    assert up["name"] == 'Ré sumé "x".html' and up["is_image"] is False
    assert up["thumbnail_url"] is None and up["content_type"] == "text/html"
    await post(client, room, room.alice, "the page", attachment_ids=[up["id"]])
    got = await client.get(up["url"], headers=room.bob.headers)
    assert got.content == page_html
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.headers["content-disposition"] == (
        'attachment; filename="R_ sum_ _x_.html"; '
        "filename*=UTF-8''R%C3%A9%20sum%C3%A9%20%22x%22.html"
    )
    assert got.headers["content-security-policy"].startswith("sandbox")
    assert (await client.get(f"{up['url']}/thumbnail", headers=room.bob.headers)).status_code == 404
    # Claiming to be an image does not make one: it is read, not believed.
    fake = await upload(
        client, room, room.alice, "x.png", b"\x89PNG\r\n\x1a\nnot really", "image/png"
    )
    assert fake["is_image"] is False and fake["thumbnail_url"] is None
    tiny = await upload(client, room, room.alice, "a.txt", b"hi", "text/plain; charset=utf-8")
    assert tiny["size"] == 2 and tiny["content_type"] == "text/plain"


async def test_the_size_limit_is_a_413_and_keeps_nothing(
    client: httpx.AsyncClient, room: Room, app: Any, data_dir: Path
) -> None:
    response = await client.post(
        files_url(room),
        params={"name": "big.bin"},
        content=b"x" * (LIMIT + 1),
        headers=room.alice.headers,
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": "payload_too_large",
        "message": f"file: must be at most {LIMIT} bytes ({LIMIT / 2**20:g} MiB)",
    }

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: cut off while read
        for _ in range(LIMIT // 50_000 + 1):
            yield b"y" * 50_000

    response = await client.post(
        files_url(room), params={"name": "big.bin"}, content=chunked(), headers=room.alice.headers
    )
    assert response.status_code == 413
    assert stored_objects(app, data_dir) in ([], ["database"])
    async with app.state.ctx.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StoredFile)) == 0
        assert await session.scalar(select(func.count()).select_from(FileChunk)) == 0
    exact = await upload(client, room, room.alice, "exact.bin", b"z" * LIMIT)
    assert exact["size"] == LIMIT
    empty = await upload(client, room, room.alice, "empty.bin", b"", status=422)
    assert empty["message"] == "body: the file is empty"


async def test_downloads_are_authorised_like_the_channel(
    client: httpx.AsyncClient, room: Room
) -> None:
    secret = await create_channel(client, room.alice, room.tid, "secret", is_private=True)
    up = await upload(client, room, room.alice, "plan.txt", b"plan", cid=secret["id"])
    # Nobody else reads an upload before it is attached, not even a member of the channel.
    await client.post(
        f"/api/tenant/{room.tid}/channel/{secret['id']}/member",
        headers=room.alice.headers,
        json={"user_id": room.bob.id},
    )
    assert (await client.get(up["url"], headers=room.bob.headers)).status_code == 404
    assert (await client.get(up["url"], headers=room.alice.headers)).content == b"plan"
    url = f"/api/tenant/{room.tid}/channel/{secret['id']}/message"
    posted = await client.post(
        url, headers=room.alice.headers, json={"content": "see", "attachment_ids": [up["id"]]}
    )
    assert posted.status_code == 201
    assert (await client.get(up["url"], headers=room.bob.headers)).content == b"plan"
    # Outside the private channel: 404, as the channel itself; signed out: 401.
    for outsider in (room.carol, room.owner):
        assert (await client.get(up["url"], headers=outsider.headers)).status_code == 404
    assert (await client.get(up["url"])).status_code == 401
    # Under another channel's id the file does not exist.
    elsewhere = up["url"].replace(secret["id"], room.cid)
    assert (await client.get(elsewhere, headers=room.alice.headers)).status_code == 404
    # Uploading needs membership of the channel.
    refused = await upload(client, room, room.carol, "x.txt", b"x", status=403)
    assert refused["message"] == "Join the channel first"


async def test_only_ones_own_unattached_uploads_can_be_attached(
    client: httpx.AsyncClient, room: Room
) -> None:
    mine = await upload(client, room, room.alice, "a.txt", b"a")
    theirs = await upload(client, room, room.bob, "b.txt", b"b")
    other = await create_channel(client, room.alice, room.tid, "other")
    there = await upload(client, room, room.alice, "c.txt", b"c", cid=other["id"])
    for ids in ([theirs["id"]], [there["id"]], ["0" * 24], [mine["id"], theirs["id"]]):
        response = await client.post(
            room.url, headers=room.alice.headers, json={"content": "", "attachment_ids": ids}
        )
        assert response.status_code == 422, ids
        assert response.json()["message"].startswith("attachment_ids: each must be a file you")
    assert (await page(client, room, room.alice))["total"] == 0
    first = await post(client, room, room.alice, "one", attachment_ids=[mine["id"]])
    again = await client.post(
        room.url,
        headers=room.alice.headers,
        json={"content": "two", "attachment_ids": [mine["id"]]},
    )
    assert again.status_code == 422
    assert first["attachments"][0]["name"] == "a.txt"
    too_many = await client.post(
        room.url,
        headers=room.alice.headers,
        json={"content": "x", "attachment_ids": [mine["id"]] * 11},
    )
    assert too_many.status_code == 422
    blank = await client.post(room.url, headers=room.alice.headers, json={"content": " "})
    assert blank.json()["message"] == "content: must not be blank"
    # An unattached upload can be withdrawn by its uploader; an attached one goes with its message.
    assert (await client.delete(theirs["url"], headers=room.alice.headers)).status_code == 404
    assert (await client.delete(theirs["url"], headers=room.bob.headers)).json() == {
        "deleted": True
    }
    assert (await client.get(theirs["url"], headers=room.bob.headers)).status_code == 404
    attached = await client.delete(mine["url"], headers=room.alice.headers)
    assert attached.status_code == 409


async def test_deleting_a_message_deletes_its_files(
    client: httpx.AsyncClient, room: Room, app: Any, data_dir: Path
) -> None:
    picture = await upload(client, room, room.alice, "p.png", png(40, 40))
    text = await upload(client, room, room.alice, "t.txt", b"text")
    kept = await upload(client, room, room.alice, "k.txt", b"kept")
    message = await post(
        client, room, room.alice, "two files", attachment_ids=[picture["id"], text["id"]]
    )
    assert [a["name"] for a in message["attachments"]] == ["p.png", "t.txt"]
    await post(client, room, room.alice, "kept", attachment_ids=[kept["id"]])
    deleted = await client.delete(f"{room.url}/{message['id']}", headers=room.admin.headers)
    assert deleted.status_code == 200
    for gone in (picture["url"], picture["thumbnail_url"], text["url"]):
        assert (await client.get(gone, headers=room.alice.headers)).status_code == 404
    assert (await client.get(kept["url"], headers=room.alice.headers)).content == b"kept"
    storage = app.state.ctx.storage
    for key in (picture["id"], f"{picture['id']}.thumb", text["id"]):
        with pytest.raises(ObjectNotFound):
            await anext(storage.open(key))
    if app.state.ctx.settings.files.storage == "local":
        assert stored_objects(app, data_dir) == [kept["id"]]


async def test_the_database_storage_streams_in_chunks(app: Any) -> None:
    storage = DatabaseStorage(app.state.ctx.sessions, chunk_bytes=1000)

    async def pieces() -> AsyncIterator[bytes]:
        for i in range(7):
            yield bytes([i]) * 333

    assert await storage.put("obj-1", pieces()) == 2331
    read = [chunk async for chunk in storage.open("obj-1")]
    assert [len(c) for c in read] == [1000, 1000, 331]
    assert b"".join(read) == b"".join(bytes([i]) * 333 for i in range(7))
    assert await storage.put("obj-1", stream(b"new")) == 3  # replaced whole
    assert [c async for c in storage.open("obj-1")] == [b"new"]
    await storage.delete("obj-1")
    with pytest.raises(ObjectNotFound):
        await anext(storage.open("obj-1"))
    with pytest.raises(ValueError):
        await storage.put("../escape", stream(b"x"))


async def test_uploads_never_attached_are_removed_after_their_time_to_live(
    client: httpx.AsyncClient, room: Room, app: Any, data_dir: Path
) -> None:
    old_picture = await upload(client, room, room.alice, "old.png", png(40, 40))
    old_text = await upload(client, room, room.bob, "old.txt", b"abandoned")
    old_but_sent = await upload(client, room, room.alice, "sent.txt", b"sent")
    fresh = await upload(client, room, room.alice, "draft.txt", b"draft")
    await post(client, room, room.alice, "sent", attachment_ids=[old_but_sent["id"]])
    day_ago = utcnow() - timedelta(hours=25)
    async with app.state.ctx.sessions() as session:
        await session.execute(
            update(StoredFile)
            .where(StoredFile.id.in_([old_picture["id"], old_text["id"], old_but_sent["id"]]))
            .values(created_at=day_ago)
        )
        await session.commit()

    uploads = app.server.uploads
    assert uploads.ttl == timedelta(hours=24)  # the default: a draft left overnight keeps its files
    assert await uploads.sweep() == 2
    assert await uploads.sweep() == 0

    for gone, who in ((old_picture, room.alice), (old_text, room.bob)):
        assert (await client.get(gone["url"], headers=who.headers)).status_code == 404
    storage = app.state.ctx.storage
    for key in (old_picture["id"], f"{old_picture['id']}.thumb", old_text["id"]):
        with pytest.raises(ObjectNotFound):
            await anext(storage.open(key))
    # What a message names, and a recent draft's upload, stay.
    kept = (old_but_sent, room.alice), (fresh, room.alice)
    for stays, who in kept:
        assert (await client.get(stays["url"], headers=who.headers)).status_code == 200
    if app.state.ctx.settings.files.storage == "local":
        assert stored_objects(app, data_dir) == sorted([old_but_sent["id"], fresh["id"]])
    # Still attachable until the sweep: the fresh upload goes into a message.
    await post(client, room, room.alice, "late", attachment_ids=[fresh["id"]])


async def test_the_sweep_runs_by_itself_every_interval(settings: Settings, room: Room) -> None:
    """A server started with a short interval and time to live removes an abandoned upload
    with nobody asking."""
    settings.files.unattached_ttl_secs = 0.2
    settings.files.sweep_interval_secs = 0.1
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            abandoned = await upload(http, room, room.alice, "a.txt", b"a")
            deadline = asyncio.get_running_loop().time() + 10
            while (await http.get(abandoned["url"], headers=room.alice.headers)).status_code == 200:
                assert asyncio.get_running_loop().time() < deadline, "never swept"
                await asyncio.sleep(0.05)
