"""Shared fixtures: a migrated database (SQLite or PostgreSQL), the app, HTTP clients, users.

The database backend comes from `ROOMLER_TEST_DATABASE`: `sqlite` (default) or a
`postgresql+asyncpg://` URL of a server where we may create a throw-away database.
"""

from __future__ import annotations

import asyncio
import gc
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from roomler.app import create_app
from roomler.config import Settings
from roomler.db.engine import create_engine
from roomler.db.migrate import upgrade
from roomler.db.models import Base

TEST_JWT_SECRET = "test-secret-" + "x" * 32


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The SFU's unit tests never touch a database: one run of them is enough.
    for item in items:
        if "/tests/sfu/" in str(item.path):
            item.add_marker(pytest.mark.nodb)


# The servers under test run in this process (threads): a full collection over everything
# the earlier tests left stalls them too. Every few tests, collect once and freeze what
# survives, so later full collections walk only what the latest tests made (CPython's
# gc.freeze; the server does the same in production, roomler/gc_policy.py).
_FREEZE_EVERY = 25
_finished_tests = 0


def pytest_runtest_logfinish(nodeid: str, location: tuple[str, int | None, str]) -> None:
    """After a test and its fixtures' teardown."""
    global _finished_tests
    _finished_tests += 1
    if _finished_tests % _FREEZE_EVERY == 0:
        gc.collect()
        gc.freeze()


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """argon2id with minimal cost in-process: the same code path, a fraction of the CPU.

    Servers started as subprocesses keep the production parameters.
    """
    from argon2 import PasswordHasher

    from roomler.auth import passwords

    original = passwords._hasher
    passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    passwords._hasher = original


def _backend() -> str:
    return os.environ.get("ROOMLER_TEST_DATABASE", "sqlite")


async def _create_postgres_database(server_url: str, name: str) -> None:
    engine = create_engine(server_url)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()


async def _drop_postgres_database(server_url: str, name: str) -> None:
    engine = create_engine(server_url)
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    backend = _backend()
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "roomler.db"
        url = f"sqlite+aiosqlite:///{path}"
        upgrade(url)
        yield url
        return
    # One database per test run, so concurrent runs never see each other's rows.
    name = f"roomler_test_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_create_postgres_database(backend, name))
    url = make_url(backend).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        asyncio.run(_drop_postgres_database(backend, name))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database={"url": database_url},
        app={"data_dir": data_dir, "cors_origins": ["http://allowed.example"]},
        jwt={"secret": TEST_JWT_SECRET},
        typing={"timeout_secs": 8.0},
    )


async def _truncate(app: Any) -> None:
    engine = app.state.ctx.engine
    async with engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            await connection.execute(table.delete())


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application
        await _truncate(application)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@dataclass
class Account:
    """A registered user and the headers that authenticate as them."""

    id: str
    username: str
    email: str
    access_token: str
    refresh_token: str
    password: str = "correct horse battery"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


async def register(client: httpx.AsyncClient, username: str, **extra: Any) -> Account:
    body = {
        "email": f"{username}@example.com",
        "username": username,
        "display_name": username.title(),
        "password": "correct horse battery",
        **extra,
    }
    response = await client.post("/api/auth/register", json=body)
    assert response.status_code == 201, response.text
    # Tests authenticate explicitly with `Account.headers`; a cookie left in the
    # shared client's jar would silently authenticate later requests.
    client.cookies.clear()
    payload = response.json()
    return Account(
        id=payload["user"]["id"],
        username=username,
        email=body["email"],
        access_token=payload["access_token"],
        refresh_token=payload["refresh_token"],
    )


@pytest.fixture
def make_user(client: httpx.AsyncClient) -> Any:
    async def make(username: str, **extra: Any) -> Account:
        return await register(client, username, **extra)

    return make
