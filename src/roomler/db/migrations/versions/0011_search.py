"""search: full-text index over messages' content (PostgreSQL GIN on a tsvector, SQLite FTS5)
and an index of each tenant's messages by time

Revision ID: 19_search
Revises: 18_files
Create Date: 2026-12-04 13:00:00.000000

On PostgreSQL adding the stored column rewrites `messages` and building the index reads
it all: on a large history, run it at a quiet time (docs/performance.md has the figures).
"""

from __future__ import annotations

from alembic import op

from roomler.search import index

revision = "19_search"
down_revision = "18_files"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_messages_tenant_created", "messages", ["tenant_id", "created_at", "id"], unique=False
    )
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        index.create_postgres_index(connection)
    else:
        index.create_sqlite_index(connection)


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        index.drop_postgres_index(connection)
    else:
        index.drop_sqlite_index(connection)
    op.drop_index("ix_messages_tenant_created", table_name="messages")
