"""The SQLite driver (`roomler.db.sqlite_driver`): one thread hop per statement, same results.

Runs on a file database of its own (whatever backend the rest of the suite uses), created
with `roomler.db.engine.create_engine` as the server creates it.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from roomler.db.engine import create_engine


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'driver.db'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
    yield engine
    await engine.dispose()


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> Iterator[collections.Counter[str]]:
    """How many calls each kind of work made to aiosqlite's connection thread."""
    counts: collections.Counter[str] = collections.Counter()
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        counts[getattr(fn, "__name__", "?")] += 1
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    yield counts


async def test_a_statement_is_one_hop_and_a_read_only_session_none_more(
    engine: AsyncEngine, hops: collections.Counter[str]
) -> None:
    async with engine.connect() as conn:  # a pooled connection exists from the fixture
        hops.clear()
        rows = (await conn.execute(text("SELECT 1 UNION SELECT 2 ORDER BY 1"))).all()
        assert [tuple(r) for r in rows] == [(1,), (2,)]
        assert sum(hops.values()) == 1
    # Returned to the pool: no ROLLBACK sent, nothing was written.
    assert sum(hops.values()) == 1


async def test_writes_commit_and_roll_back_as_before(
    engine: AsyncEngine, hops: collections.Counter[str]
) -> None:
    async with engine.connect() as conn:
        hops.clear()
        result = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
        assert result.rowcount == 1
        assert result.lastrowid == 1
        await conn.commit()
        assert sum(hops.values()) == 2  # the INSERT, the COMMIT
        await conn.execute(text("INSERT INTO t (name) VALUES ('b')"))
        await conn.rollback()
        updated = await conn.execute(text("UPDATE t SET name = 'c' WHERE name IN ('a', 'b')"))
        assert updated.rowcount == 1  # 'b' was rolled back
        await conn.commit()
    async with engine.connect() as conn:
        names = (await conn.execute(text("SELECT name FROM t ORDER BY id"))).scalars().all()
        assert names == ["c"]


async def test_errors_are_sqlalchemy_errors_and_the_connection_stays_usable(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
        with pytest.raises(IntegrityError):
            await conn.execute(text("INSERT INTO t (name) VALUES ('x')"))
        await conn.rollback()
        many = await conn.execute(
            text("INSERT INTO t (name) VALUES (:name)"), [{"name": "y"}, {"name": "z"}]
        )
        assert many.rowcount == 2
        await conn.commit()
        count = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        assert count == 2
