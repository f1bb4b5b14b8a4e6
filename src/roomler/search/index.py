"""Full-text search over messages: the index on each database and the query that uses it.

PostgreSQL: a stored generated column `messages.search_vector`, the `simple` text search
configuration (no stemming, no stop words: a chat mixes languages) over the content with
its punctuation blanked, so `example.com` or `3.14` are split into words the same way as
on SQLite; a GIN index on it.

SQLite: an FTS5 table `messages_fts` with external content (the text is stored once, in
`messages`; FTS5 keeps only the index), keyed by the messages' rowid and kept current by
triggers, so every write path (the API, a bulk load, a cascade) updates it. The
`unicode61` tokenizer keeps diacritics, as PostgreSQL's `simple` does.

A migration that recreates `messages` on SQLite (Alembic's batch mode copies the table)
drops these triggers and renumbers rowids: it must call `drop_sqlite_index` before and
`create_sqlite_index` after (which rebuilds the index from the table).

Both sides receive only `Term`s (search/syntax.py), words of letters and digits,
quoted here in each engine's syntax: nothing a user types is read as an operator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Integer,
    Select,
    bindparam,
    column,
    func,
    literal_column,
    table,
    text,
    tuple_,
)
from sqlalchemy.engine import Connection

from roomler.db.models import Message
from roomler.search.syntax import Term

T = TypeVar("T")

# The FTS5 table as a FROM item: `rowid` is the message's, the hidden column of the
# table's own name is what MATCH is applied to.
FTS = table("messages_fts", column("rowid", Integer), column("messages_fts"))
MESSAGE_ROWID: ColumnElement[int] = literal_column("messages.rowid")

PG_CONFIG = "simple"
PG_DOCUMENT = (
    f"to_tsvector('{PG_CONFIG}'::regconfig, regexp_replace(content, '[[:punct:]]', ' ', 'g'))"
)

SQLITE_DDL = (
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, content='messages', content_rowid='rowid', "
    "tokenize='unicode61 remove_diacritics 0')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
    # Index what is already there.
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
)


def create_postgres_index(connection: Connection) -> None:
    connection.execute(
        text(
            f"ALTER TABLE messages ADD COLUMN search_vector tsvector "
            f"GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED"
        )
    )
    connection.execute(
        text("CREATE INDEX ix_messages_search_vector ON messages USING gin (search_vector)")
    )


def drop_postgres_index(connection: Connection) -> None:
    connection.execute(text("DROP INDEX IF EXISTS ix_messages_search_vector"))
    connection.execute(text("ALTER TABLE messages DROP COLUMN IF EXISTS search_vector"))


def create_sqlite_index(connection: Connection) -> None:
    for statement in SQLITE_DDL:
        connection.execute(text(statement))


def drop_sqlite_index(connection: Connection) -> None:
    for trigger in ("insert", "delete", "update"):
        connection.execute(text(f"DROP TRIGGER IF EXISTS messages_fts_{trigger}"))
    connection.execute(text("DROP TABLE IF EXISTS messages_fts"))


# --- matching ------------------------------------------------------------------------------


def tsquery(terms: Sequence[Term]) -> str:
    """`to_tsquery` text: each term's words joined by `<->` (next to each other), terms
    by `&`; `:*` makes the last word a prefix. Words hold no quote, so quoting is safe."""
    parts = []
    for term in terms:
        lexemes = [f"'{word}'" for word in term.words]
        if term.prefix:
            lexemes[-1] += ":*"
        parts.append(" <-> ".join(lexemes))
    return " & ".join(parts)


def fts5_query(terms: Sequence[Term]) -> str:
    """An FTS5 MATCH expression: each term a "quoted phrase" (so AND, NEAR, * and
    parentheses typed by the user are plain words), `*` after a prefix; implicit AND."""
    return " ".join(f'"{" ".join(term.words)}"' + ("*" if term.prefix else "") for term in terms)


def matches(terms: Sequence[Term]) -> ColumnElement[bool]:
    """PostgreSQL: a WHERE condition on `messages`, its content has every term."""
    config: ColumnElement[Any] = literal_column(f"'{PG_CONFIG}'::regconfig")
    # In the SQL text, not a parameter: a prepared statement's generic plan would not know
    # the words, and which plan is right depends on them (see `newest_matching`).
    words = bindparam("search_tsquery", tsquery(terms), literal_execute=True)
    query = func.to_tsquery(config, words)
    return literal_column("messages.search_vector").op("@@")(query)


def sort_key(dialect: str, terms: Sequence[Term]) -> list[Any]:
    """The columns of `messages` that `newest_matching` orders by, for a page cursor."""
    if terms and dialect != "postgresql":
        return [MESSAGE_ROWID]
    return [Message.created_at, Message.id]


def newest_matching(
    query: Select[T], dialect: str, terms: Sequence[Term], before: Sequence[Any] | None = None
) -> Select[T]:
    """`query`, a select from `messages`, narrowed to those with every term, newest first,
    older than the `sort_key` values `before`.

    PostgreSQL: the GIN index finds a rare word's few messages, which are then sorted; for
    a frequent word the planner walks `ix_messages_tenant_created` backwards instead and
    stops after a page (its statistics of the tsvector column tell the two apart).
    SQLite: FTS5 leads and walks its matches from the highest rowid down, so the join stops
    after a page whatever the word. Rowids are the order messages were stored in, which is
    the order they were posted: on SQLite, words or not, that is what "newest" means.
    """
    if terms and dialect != "postgresql":
        match: BindParameter[str] = bindparam("search_fts", fts5_query(terms))
        query = (
            query.join(FTS, FTS.c.rowid == MESSAGE_ROWID)
            .where(FTS.c.messages_fts.op("MATCH")(match))
            .order_by(FTS.c.rowid.desc())
        )
        return query if before is None else query.where(FTS.c.rowid < before[0])
    if terms:
        query = query.where(matches(terms))
    query = query.order_by(Message.created_at.desc(), Message.id.desc())
    if before is None:
        return query
    return query.where(tuple_(Message.created_at, Message.id) < tuple_(*before))
