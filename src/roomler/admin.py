"""Administration from the command line: users, and backing up / restoring a SQLite install.

`roomler user create|set-password|set-admin` work on either database. Passwords are read
from the terminal (twice) or from standard input, never from the command line, where
`ps` and shell histories would show them. Admin is a workspace role (owner, admin,
member), so `set-admin` names the workspace.

`roomler backup DIR` copies a running server's SQLite database with SQLite's online
backup API (a consistent snapshot while writers carry on) and the generated JWT secret,
so tokens issued before the backup stay valid after a restore. `roomler restore DIR`
puts both back into the configured data directory of a stopped server. PostgreSQL has
its own tools (pg_dump / pg_restore; docs/operations.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from roomler.api.auth import Password, RegisterIn
from roomler.auth.passwords import hash_password
from roomler.config import Settings
from roomler.db.engine import create_engine, create_session_factory
from roomler.db.models import Tenant, TenantMember, User

MANIFEST = "roomler-backup.json"
DATABASE_FILE = "roomler.db"
SECRET_FILE = "jwt_secret"
POSTGRES_HINT = (
    "the database is PostgreSQL: back it up with pg_dump and restore it with pg_restore "
    "(docs/operations.md, Backups)"
)


class NewPassword(BaseModel):
    """The API's rules for a password (api/auth.py)."""

    password: Password


class AdminError(Exception):
    """A command cannot do what was asked; the message says why, in one line."""


def first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or "input"
    return f"{field}: {error['msg'].removeprefix('Value error, ')}"


# --- users --------------------------------------------------------------------------------


async def create_user(
    settings: Settings, username: str, email: str, display_name: str, password: str
) -> str:
    """The new user's id; refuses names and addresses already registered."""
    try:
        valid = RegisterIn(
            email=email, username=username, display_name=display_name, password=password
        )
    except ValidationError as exc:
        raise AdminError(first_error(exc)) from None
    email = valid.email.lower()
    async with _session(settings) as session:
        taken = await session.scalar(
            select(User).where(
                or_(func.lower(User.email) == email, func.lower(User.username) == username.lower())
            )
        )
        if taken is not None:
            field = "email" if taken.email.lower() == email else "username"
            raise AdminError(f"that {field} is already registered")
        password_hash = await asyncio.to_thread(hash_password, password)
        user = User(
            email=email,
            username=username,
            display_name=display_name,
            password_hash=password_hash,
        )
        session.add(user)
        await session.commit()
        return user.id


async def set_password(settings: Settings, username: str, password: str) -> None:
    try:
        NewPassword(password=password)
    except ValidationError as exc:
        raise AdminError(first_error(exc)) from None
    async with _session(settings) as session:
        user = await _user(session, username)
        user.password_hash = await asyncio.to_thread(hash_password, password)
        await session.commit()


async def set_admin(settings: Settings, username: str, tenant_slug: str, admin: bool) -> str:
    """Make the user an admin of the workspace (or a plain member again); the new role."""
    async with _session(settings) as session:
        user = await _user(session, username)
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == tenant_slug))
        if tenant is None:
            raise AdminError(f"no workspace with slug {tenant_slug!r}")
        member = await session.scalar(
            select(TenantMember).where(
                TenantMember.tenant_id == tenant.id, TenantMember.user_id == user.id
            )
        )
        if member is None:
            member = TenantMember(tenant_id=tenant.id, user_id=user.id, role="member")
            session.add(member)
        if member.role == "owner":
            raise AdminError(f"{username} owns {tenant_slug}; an owner stays an owner")
        member.role = "admin" if admin else "member"
        await session.commit()
        return member.role


async def _user(session: AsyncSession, username: str) -> User:
    user = await session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None:
        raise AdminError(f"no user named {username!r}")
    return user


@asynccontextmanager
async def _session(settings: Settings) -> AsyncIterator[AsyncSession]:
    """A session on the configured database; its engine is disposed of afterwards."""
    engine = create_engine(settings.database.url)
    try:
        async with create_session_factory(engine)() as session:
            yield session
    finally:
        await engine.dispose()


# --- backup and restore (SQLite) ----------------------------------------------------------


def sqlite_path(settings: Settings) -> Path:
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite":
        raise AdminError(POSTGRES_HINT)
    if not url.database or url.database == ":memory:":
        raise AdminError("the SQLite database is in memory: there is nothing to back up")
    return Path(url.database)


def backup(settings: Settings, target: Path) -> dict[str, Any]:
    """Write the database and the JWT secret into `target` (new or empty); the manifest."""
    database = sqlite_path(settings)
    if not database.is_file():
        raise AdminError(f"no database at {database}")
    if target.exists() and any(target.iterdir()):
        raise AdminError(f"{target} is not empty; back up into a new directory")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    _sqlite_copy(database, target / DATABASE_FILE)
    (target / DATABASE_FILE).chmod(0o600)  # password hashes
    secret = _secret_file(settings)
    if secret is not None:
        _write_private(target / SECRET_FILE, secret.read_text())
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": DATABASE_FILE,
        # None: the secret is set in ROOMLER__JWT__SECRET (keep that setting with the
        # backup), or the server never ran here.
        "jwt_secret": SECRET_FILE if secret is not None else None,
    }
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def restore(settings: Settings, source: Path, force: bool = False) -> Path:
    """Put a backup back into the configured database path and data directory."""
    manifest_path = source / MANIFEST
    if not manifest_path.is_file():
        raise AdminError(f"{source} holds no Roomler backup ({MANIFEST} is missing)")
    manifest = json.loads(manifest_path.read_text())
    database = sqlite_path(settings)
    if database.exists() and not force:
        raise AdminError(f"{database} exists; stop the server and pass --force to replace it")
    database.parent.mkdir(parents=True, exist_ok=True)
    for leftover in (Path(f"{database}-wal"), Path(f"{database}-shm")):
        leftover.unlink(missing_ok=True)  # belong to the database being replaced
    _sqlite_copy(source / manifest["database"], database)
    if manifest.get("jwt_secret"):
        _write_private(settings.app.data_dir / SECRET_FILE, (source / SECRET_FILE).read_text())
    return database


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while the server writes."""
    reader = sqlite3.connect(source)
    writer = sqlite3.connect(target)
    try:
        reader.backup(writer)
    finally:
        writer.close()
        reader.close()


def _secret_file(settings: Settings) -> Path | None:
    """The generated secret's file, or None when the secret comes from the environment."""
    path = settings.app.data_dir / SECRET_FILE
    if settings.jwt.secret or not path.is_file():
        return None
    return path


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    shutil.move(temporary, path)
