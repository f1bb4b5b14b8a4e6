"""The search index's migration: what is already stored is indexed; downgrading removes it.

On the database `ROOMLER_TEST_DATABASE` names (a fresh one, since this migrates from an
older revision).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from roomler.db.engine import create_engine
from roomler.db.migrate import downgrade, upgrade
from roomler.db.models import Message, utcnow
from roomler.search.index import newest_matching
from roomler.search.syntax import parse
from tests.conftest import _create_postgres_database, _drop_postgres_database


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    backend = os.environ.get("ROOMLER_TEST_DATABASE", "sqlite")
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'search.db'}"
        return
    name = f"roomler_search_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(_create_postgres_database(backend, name))
    try:
        yield make_url(backend).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(_drop_postgres_database(backend, name))


async def _store_a_message(url: str, content: str) -> None:
    engine = create_engine(url)
    now = utcnow()
    rows = {"u": "a" * 24, "t": "b" * 24, "c": "c" * 24, "m": "d" * 24, "now": now}
    async with engine.begin() as connection:
        for statement in (
            "INSERT INTO users (id, email, username, display_name, password_hash, presence,"
            " created_at, updated_at) VALUES (:u, 'a@x.org', 'a', 'A', 'x', 'online', :now, :now)",
            "INSERT INTO tenants (id, name, slug, owner_id, created_at)"
            " VALUES (:t, 'T', 't', :u, :now)",
            "INSERT INTO channels (id, tenant_id, name, path, channel_type, is_private,"
            " member_count, created_by, created_at, updated_at)"
            " VALUES (:c, :t, 'g', 'g', 'text', false, 0, :u, :now, :now)",
        ):
            await connection.execute(text(statement), rows)
        await connection.execute(
            Message.__table__.insert().values(
                id=rows["m"],
                tenant_id=rows["t"],
                channel_id=rows["c"],
                author_id=rows["u"],
                content=content,
                message_type="default",
                is_edited=False,
                is_pinned=False,
                created_at=now,
                updated_at=now,
            )  # fmt: skip
        )
    await engine.dispose()


async def _found(url: str, q: str) -> list[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = select(Message.content)
            query = newest_matching(query, connection.dialect.name, parse(q).terms)
            rows = await connection.execute(query)
            return list(rows.scalars())
    finally:
        await engine.dispose()


def test_messages_stored_before_the_migration_are_indexed(fresh_url: str) -> None:
    upgrade(fresh_url, "18_files")  # Alembic runs its own event loop: this test is synchronous
    asyncio.run(_store_a_message(fresh_url, "written before search existed"))
    upgrade(fresh_url)
    assert asyncio.run(_found(fresh_url, "before search")) == ["written before search existed"]
    assert asyncio.run(_found(fresh_url, "after")) == []
    downgrade(fresh_url, "18_files")
    upgrade(fresh_url)
    assert asyncio.run(_found(fresh_url, "existed")) == ["written before search existed"]


async def _plan(url: str, q: str) -> str:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            query = select(Message.id).where(Message.channel_id.in_(["c" * 24]))
            query = newest_matching(query, "sqlite", parse(q).terms, before=[7]).limit(21)
            sql = str(query.compile(engine.sync_engine, compile_kwargs={"literal_binds": True}))
            rows = await connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            return "\n".join(str(row[-1]) for row in rows)
    finally:
        await engine.dispose()


def test_sqlite_walks_the_matches_newest_first_without_sorting(tmp_path: Path) -> None:
    """FTS5 leads, in rowid order (the page cursor applied by FTS5 itself), and each match
    is looked up by rowid: a frequent word stops after a page instead of sorting them all."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}"
    upgrade(url)
    plan = asyncio.run(_plan(url, "frequent word"))
    first, second = plan.splitlines()[:2]
    assert first.startswith("SCAN messages_fts VIRTUAL TABLE") and first.endswith("<"), plan
    assert "INTEGER PRIMARY KEY (rowid=?)" in second, plan
    assert "TEMP B-TREE" not in plan, plan
