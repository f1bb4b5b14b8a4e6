"""Profiles (issue 18 item 11): display name, picture, time zone and password, on both
databases, and the `user:updated` event that carries a new name or picture to everyone
who shares a workspace with the user.

Alice and Bob share the workspace `acme`; Eve is in none of theirs."""

from __future__ import annotations

import io
from typing import Any

import httpx
from PIL import Image

from roomler.api.avatars import AVATAR_PX
from tests.api.test_messages import RecordingPublisher
from tests.api.test_messages import recorder as recorder  # noqa: F401 (fixture)
from tests.api.test_tenants import add_member, create_tenant
from tests.conftest import Account


def picture(width: int, height: int, fmt: str = "PNG", mode: str = "RGB") -> bytes:
    """A picture whose left half is red and right half blue, to see where it was cut."""
    image = Image.new(mode, (width, height), "red")
    image.paste("blue", (width // 2, 0, width, height))
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


async def people(
    client: httpx.AsyncClient, make_user: Any
) -> tuple[str, Account, Account, Account]:
    alice, bob, eve = [await make_user(n) for n in ("alice", "bob", "eve")]
    tid = (await create_tenant(client, alice, "acme"))["id"]
    assert (await add_member(client, alice, tid, user_id=bob.id)).status_code == 201
    return tid, alice, bob, eve


async def upload(client: httpx.AsyncClient, who: Account, data: bytes) -> httpx.Response:
    return await client.put(
        "/api/auth/me/avatar",
        headers={**who.headers, "content-type": "image/png"},
        content=data,
    )


def updates(recorder: RecordingPublisher) -> list[Any]:
    return [p for p in recorder.published if p.event_type == "user:updated"]


async def test_name_and_time_zone_reach_everyone_sharing_a_workspace(
    client: httpx.AsyncClient, make_user: Any, recorder: RecordingPublisher
) -> None:
    tid, alice, bob, eve = await people(client, make_user)
    changed = await client.put(
        "/api/auth/me",
        headers=alice.headers,
        json={"display_name": "Alice W.", "time_zone": "Europe/Paris"},
    )
    assert changed.status_code == 200, changed.text
    me = changed.json()
    assert (me["display_name"], me["time_zone"], me["email"]) == (
        "Alice W.",
        "Europe/Paris",
        "alice@example.com",
    )
    [event] = updates(recorder)
    # Alice's tabs and Bob's; Eve shares nothing with her. No email in what others see.
    assert event.user_ids == sorted([alice.id, bob.id])
    assert event.data == {
        "user": {
            "id": alice.id,
            "username": "alice",
            "display_name": "Alice W.",
            "avatar": None,
            "time_zone": "Europe/Paris",
        }
    }
    members = await client.get(f"/api/tenant/{tid}/member", headers=bob.headers)
    shown = {m["username"]: m for m in members.json()["items"]}["alice"]
    assert (shown["display_name"], shown["time_zone"]) == ("Alice W.", "Europe/Paris")

    cleared = await client.put("/api/auth/me", headers=alice.headers, json={"time_zone": ""})
    assert cleared.json()["time_zone"] is None
    assert (await client.get("/api/auth/me", headers=alice.headers)).json()["time_zone"] is None


async def test_a_time_zone_must_be_an_iana_name(client: httpx.AsyncClient, make_user: Any) -> None:
    alice = await make_user("alice")
    for bad in ("Mars/Olympus", "../../etc/passwd", "europe/paris", "UTC+2"):
        response = await client.put("/api/auth/me", headers=alice.headers, json={"time_zone": bad})
        assert response.status_code == 422, bad
        assert "time zone" in response.text
    ok = await client.put("/api/auth/me", headers=alice.headers, json={"time_zone": "UTC"})
    assert ok.json()["time_zone"] == "UTC"


async def test_an_uploaded_picture_is_cut_square_and_shown_to_workspace_peers_only(
    client: httpx.AsyncClient, make_user: Any, recorder: RecordingPublisher, app: Any
) -> None:
    tid, alice, bob, eve = await people(client, make_user)
    # Wider than high: the middle square is kept (red on the left, blue on the right).
    response = await upload(client, alice, picture(900, 300))
    assert response.status_code == 200, response.text
    url = response.json()["avatar"]
    assert url.startswith(f"/api/user/{alice.id}/avatar/")
    [event] = updates(recorder)
    assert event.user_ids == sorted([alice.id, bob.id]) and event.data["user"]["avatar"] == url

    served = await client.get(url, headers=bob.headers)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert "private" in served.headers["cache-control"]
    with Image.open(io.BytesIO(served.content)) as image:
        assert image.size == (AVATAR_PX, AVATAR_PX)
        left, right = image.getpixel((5, AVATAR_PX // 2)), image.getpixel((AVATAR_PX - 5, 128))
    assert left[0] > 200 and left[2] < 60 and right[2] > 200 and right[0] < 60
    assert (await client.get(url, headers=alice.headers)).status_code == 200
    # Someone sharing no workspace, and nobody signed in, see nothing.
    assert (await client.get(url, headers=eve.headers)).status_code == 404
    assert (await client.get(url)).status_code == 401

    members = await client.get(f"/api/tenant/{tid}/member", headers=bob.headers)
    assert {m["username"]: m["avatar"] for m in members.json()["items"]}["alice"] == url

    # A new picture is a new URL; the old one is gone, from the storage too.
    transparent = picture(100, 100, mode="RGBA")
    newer = (await upload(client, alice, transparent)).json()["avatar"]
    assert newer != url and newer.endswith(".png")
    assert (await client.get(url, headers=bob.headers)).status_code == 404
    storage = app.state.ctx.storage
    old_key = url.rsplit("/", 1)[1]
    assert [chunk async for chunk in _read_or_nothing(storage, old_key)] == []
    assert (await client.get(newer, headers=bob.headers)).headers["content-type"] == "image/png"

    # Taking the picture away: no avatar, the bytes removed.
    gone = await client.put("/api/auth/me", headers=alice.headers, json={"avatar": ""})
    assert gone.json()["avatar"] is None
    assert (await client.get(newer, headers=alice.headers)).status_code == 404
    assert [c async for c in _read_or_nothing(storage, newer.rsplit("/", 1)[1])] == []
    assert len(updates(recorder)) == 3


async def _read_or_nothing(storage: Any, key: str) -> Any:
    from roomler.files.storage import ObjectNotFound

    try:
        async for chunk in storage.open(key):
            yield chunk
    except ObjectNotFound:
        return


async def test_an_upload_that_is_no_picture_or_too_big_is_refused(
    client: httpx.AsyncClient, make_user: Any, recorder: RecordingPublisher
) -> None:
    alice = await make_user("alice")
    for body in (b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"", b"\x89PNG\r\n\x1a\nbroken!"):
        response = await upload(client, alice, body)
        assert response.status_code == 422, body
        assert "image" in response.json()["message"]
    huge = await client.put(
        "/api/auth/me/avatar",
        headers={**alice.headers, "content-type": "image/png"},
        content=b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024),
    )
    assert huge.status_code == 413
    assert (await client.get("/api/auth/me", headers=alice.headers)).json()["avatar"] is None
    assert updates(recorder) == []


async def test_other_users_pictures_are_not_guessable_by_id(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    tid, alice, bob, eve = await people(client, make_user)
    await upload(client, alice, picture(64, 64))
    # A wrong key, a user without a picture, an id that is no id: the same 404.
    for path in (
        f"/api/user/{alice.id}/avatar/avatar-000000000000000000000000.jpg",
        f"/api/user/{bob.id}/avatar/x.jpg",
        "/api/user/nope/avatar/x.jpg",
    ):
        assert (await client.get(path, headers=bob.headers)).status_code == 404, path


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    response = await client.post(
        "/api/auth/login", json={"username": username, "password": password}
    )
    client.cookies.clear()
    return response


async def test_changing_the_password_needs_the_current_one_and_ends_other_sign_ins(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    alice = await make_user("alice")
    other = (await login(client, "alice", alice.password)).json()  # a second device
    change = {"current_password": "not it at all", "new_password": "a brand new secret"}

    wrong = await client.put("/api/auth/me/password", headers=alice.headers, json=change)
    assert wrong.status_code == 403
    assert "current_password" in wrong.json()["message"]
    short = {"current_password": alice.password, "new_password": "short"}
    assert (
        await client.put("/api/auth/me/password", headers=alice.headers, json=short)
    ).status_code == 422

    change["current_password"] = alice.password
    done = await client.put("/api/auth/me/password", headers=alice.headers, json=change)
    assert done.status_code == 200, done.text
    assert done.json() == {"changed": True, "sessions_ended": 1}

    # The old password no longer signs in; the new one does.
    assert (await login(client, "alice", alice.password)).status_code == 401
    assert (await login(client, "alice", "a brand new secret")).status_code == 200
    # The other device's session is over: its refresh token is refused at once.
    refused = await client.post("/api/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refused.status_code == 401
    # This one carries on.
    kept = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    client.cookies.clear()
    assert kept.status_code == 200, kept.text


async def test_wrong_current_passwords_are_rate_limited_like_logins(
    client: httpx.AsyncClient, make_user: Any
) -> None:
    alice = await make_user("alice")
    change = {"current_password": "guess guess", "new_password": "a brand new secret"}
    codes = [
        (await client.put("/api/auth/me/password", headers=alice.headers, json=change)).status_code
        for _ in range(11)
    ]
    assert codes[:10] == [403] * 10 and codes[10] == 429
