"""Files over real WebSockets (issue 18 item 6): a message's files reach the channel's
members with `message:create`, are readable from the URLs it carries, and go with
`message:delete`; an upload alone tells nobody."""

from __future__ import annotations

import io

import httpx
from PIL import Image

from tests.realtime.conftest import drain_all
from tests.realtime.test_chat_events import post
from tests.realtime.test_scoping import Room
from tests.realtime.test_scoping import room as room  # noqa: F401 (fixture)


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 200)).save(out, "JPEG")
    return out.getvalue()


async def test_files_travel_with_their_message_to_the_members_tabs_only(
    room: Room, http: httpx.AsyncClient
) -> None:
    files_url = f"/api/tenant/{room.tenant_id}/channel/{room.channel_id}/file"
    picture = jpeg()
    uploaded = []
    for name, data, kind in [("cat.jpg", picture, "image/jpeg"), ("notes.txt", b"n", "text/plain")]:
        response = await http.post(
            files_url,
            params={"name": name},
            content=data,
            headers=room.alice.headers | {"content-type": kind},
        )
        assert response.status_code == 201, response.text
        uploaded.append(response.json())
    assert await drain_all(*room.everyone) == [[], [], [], [], []]

    message = await post(http, room, room.alice, "", attachment_ids=[f["id"] for f in uploaded])
    created = {"type": "message:create", "data": message}
    frames = await drain_all(*room.everyone)
    assert frames == [[], [], [created], [created], []]
    image, text = frames[2][0]["data"]["attachments"]
    assert (image["name"], image["is_image"], image["width"]) == ("cat.jpg", True, 640)
    assert (text["name"], text["is_image"], text["thumbnail_url"]) == ("notes.txt", False, None)
    got = await http.get(image["url"], headers=room.bob.headers)
    assert got.status_code == 200 and got.content == picture
    thumb = await http.get(image["thumbnail_url"], headers=room.bob.headers)
    assert Image.open(io.BytesIO(thumb.content)).size == (360, 270)
    # The channel is public: its files, like its history, are readable by the workspace
    # (the private case is in tests/api/test_files.py); Carol was just not sent the event.
    assert (await http.get(text["url"], headers=room.carol.headers)).content == b"n"

    deleted = await http.delete(room.message_url(f"/{message['id']}"), headers=room.alice.headers)
    assert deleted.status_code == 200
    gone = {
        "type": "message:delete",
        "data": {"message_id": message["id"], "channel_id": room.channel_id, "thread_id": None},
    }
    assert await drain_all(*room.everyone) == [[gone], [gone], [gone], [gone], []]
    for url in (image["url"], image["thumbnail_url"], text["url"]):
        assert (await http.get(url, headers=room.bob.headers)).status_code == 404
