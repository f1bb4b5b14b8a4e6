"""Apply Alembic migrations programmatically (`roomler migrate`, and before `roomler serve`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection

from roomler.db.engine import ensure_sqlite_directory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # ConfigParser interpolation treats '%' specially (URL-encoded passwords).
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    ensure_sqlite_directory(database_url)
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The revisions this code's migrations end at."""
    return frozenset(_scripts().get_heads())


@lru_cache(maxsize=1)
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config("sqlite://"))


def current_revisions(connection: Connection) -> frozenset[str]:
    """The revisions the database is at (run with `AsyncConnection.run_sync`)."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def migration_state(revisions: frozenset[str]) -> str | None:
    """None when the database has this code's migrations, else what is missing.

    A revision this code does not know is newer than it (a node upgraded first, in a
    rolling upgrade): the schema only grows, so this node can still serve.
    """
    if head_revisions() <= revisions:
        return None
    unknown = [rev for rev in revisions if not _known(rev)]
    if unknown:
        return None
    at = ", ".join(sorted(revisions)) or "an empty database"
    return f"migrations pending: at {at}, this code needs {', '.join(sorted(head_revisions()))}"


def _known(revision: str) -> bool:
    try:
        return _scripts().get_revision(revision) is not None
    except CommandError:
        return False
