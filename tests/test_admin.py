"""`roomler user ...`, `roomler backup` and `roomler restore`, run as an administrator would.

Each command is a real `python -m roomler` subprocess beside a real `roomler serve`.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.test_serve import RoomlerProcess

PASSWORD = "correct horse battery"
COMMAND_TIMEOUT = 120


def roomler(
    server: RoomlerProcess, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`python -m roomler ARGS` in the server's directory, with its settings."""
    return subprocess.run(
        [sys.executable, "-m", "roomler", *args],
        cwd=server.cwd,
        env=server.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )


def login(base: str, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{base}/api/auth/login", json={"username": username, "password": password})


def test_user_create_set_password_and_set_admin(tmp_path: Path, database_url: str) -> None:
    server = RoomlerProcess(tmp_path, database_url)
    suffix = secrets.token_hex(3)  # the PostgreSQL database outlives this test
    carol, owner, slug = f"carol_{suffix}", f"owner_{suffix}", f"acme-{suffix}"

    # Before the server ever ran: the command applies the migrations itself.
    created = roomler(
        server, "user", "create", carol, "--email", f"{carol}@example.com", stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith(f"created user {carol} (")
    again = roomler(
        server, "user", "create", carol, "--email", f"x{carol}@example.com", stdin=PASSWORD + "\n"
    )
    assert again.returncode == 1 and "username is already registered" in again.stderr
    short = roomler(server, "user", "set-password", carol, stdin="short\n")
    assert short.returncode == 1 and "password: " in short.stderr and "at least 8" in short.stderr

    server.start()
    try:
        assert login(server.base, carol, PASSWORD).status_code == 200
        changed = roomler(server, "user", "set-password", carol, stdin="a new password 42\n")
        assert changed.returncode == 0, changed.stderr
        assert login(server.base, carol, PASSWORD).status_code == 401
        token = login(server.base, carol, "a new password 42").json()["access_token"]

        body = {
            "email": f"{owner}@example.com",
            "username": owner,
            "display_name": "Owner",
            "password": PASSWORD,
            "tenant_name": "Acme",
            "tenant_slug": slug,
        }
        assert httpx.post(f"{server.base}/api/auth/register", json=body).status_code == 201
        made = roomler(server, "user", "set-admin", carol, "--tenant", slug)
        assert made.returncode == 0 and made.stdout.strip() == f"{carol} is now admin of {slug}"
        tenants = httpx.get(
            f"{server.base}/api/tenant", headers={"Authorization": f"Bearer {token}"}
        )
        (acme,) = [t for t in tenants.json() if t["slug"] == slug]
        assert acme["role"] == "admin"
        revoked = roomler(server, "user", "set-admin", carol, "--tenant", slug, "--revoke")
        assert revoked.stdout.strip() == f"{carol} is now member of {slug}"
        owner_stays = roomler(server, "user", "set-admin", owner, "--tenant", slug, "--revoke")
        assert owner_stays.returncode == 1 and "an owner stays an owner" in owner_stays.stderr
        unknown = roomler(server, "user", "set-admin", "nobody_here", "--tenant", slug)
        assert unknown.returncode == 1 and "no user named 'nobody_here'" in unknown.stderr
    finally:
        server.stop()


def post_history(base: str) -> tuple[dict[str, str], str, list[dict[str, Any]]]:
    """A channel of messages and a thread: the owner's headers, the channel's message path,
    the messages."""
    body = {
        "email": "ann@example.com",
        "username": "ann",
        "display_name": "Ann",
        "password": PASSWORD,
        "tenant_name": "Acme",
        "tenant_slug": "acme",
    }
    registered = httpx.post(f"{base}/api/auth/register", json=body)
    assert registered.status_code == 201, registered.text
    headers = {"Authorization": f"Bearer {registered.json()['access_token']}"}
    (tenant,) = httpx.get(f"{base}/api/tenant", headers=headers).json()
    channels = f"{base}/api/tenant/{tenant['id']}/channel"
    channel = httpx.post(channels, json={"name": "history"}, headers=headers).json()
    messages_path = f"/api/tenant/{tenant['id']}/channel/{channel['id']}/message"
    posted = []
    with httpx.Client(base_url=base, headers=headers) as http:
        for number in range(40):
            response = http.post(messages_path, json={"content": f"message {number} ✓"})
            assert response.status_code == 201, response.text
            posted.append(response.json())
        reply = http.post(messages_path, json={"content": "a reply", "thread_id": posted[0]["id"]})
        assert reply.status_code == 201, reply.text
    return headers, messages_path, posted


def read_history(base: str, headers: dict[str, str], path: str) -> list[tuple[str, str]]:
    listed = httpx.get(f"{base}{path}", params={"per_page": 100}, headers=headers)
    assert listed.status_code == 200, listed.text
    return [(m["id"], m["content"]) for m in listed.json()["items"]]


def test_backup_of_a_running_server_restores_into_a_fresh_data_directory(
    tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    old = RoomlerProcess(tmp_path / "old", database_url)
    if not database_url.startswith("sqlite"):
        refused = roomler(old, "backup", str(tmp_path / "backup"))
        assert refused.returncode == 1 and "pg_dump" in refused.stderr
        return
    old.start()
    try:
        headers, messages_path, posted = post_history(old.base)
        before = read_history(old.base, headers, messages_path)
        backed_up = roomler(old, "backup", str(tmp_path / "backup"))  # while it serves
        assert backed_up.returncode == 0, backed_up.stderr
        assert roomler(old, "backup", str(tmp_path / "backup")).returncode == 1  # not empty
    finally:
        old.stop()
    assert sorted(p.name for p in (tmp_path / "backup").iterdir()) == [
        "jwt_secret",
        "roomler-backup.json",
        "roomler.db",
    ]
    assert oct((tmp_path / "backup" / "jwt_secret").stat().st_mode)[-3:] == "600"

    new = RoomlerProcess(tmp_path / "new", database_url)
    restored = roomler(new, "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stderr
    again = roomler(new, "restore", str(tmp_path / "backup"))
    assert again.returncode == 1 and "--force" in again.stderr
    new.start()
    try:
        # The old token is still good (the secret came back), and so is every message.
        assert read_history(new.base, headers, messages_path) == before
        assert len(before) == 40 and {c for _, c in before} == {p["content"] for p in posted}
        thread_path = f"{new.base}{messages_path}/{posted[0]['id']}/thread"
        thread = httpx.get(thread_path, headers=headers)
        assert [m["content"] for m in thread.json()] == ["a reply"]
        assert login(new.base, "ann", PASSWORD).status_code == 200
    finally:
        new.stop()
