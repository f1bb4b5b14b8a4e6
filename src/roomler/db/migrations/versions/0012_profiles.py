"""profiles: a user's time zone and their uploaded avatar's storage key

Revision ID: 18_profiles
Revises: 19_search
Create Date: 2026-12-04 13:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "18_profiles"
down_revision = "19_search"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases (SQLite 3.35+ drops columns): a batch copy of
# `users` would fail on SQLite, every other table pointing at it.
def upgrade() -> None:
    op.add_column("users", sa.Column("time_zone", sa.String(length=64), nullable=True))
    op.add_column("users", sa.Column("avatar_key", sa.String(length=128), nullable=True))


def downgrade() -> None:
    op.drop_column("users", "avatar_key")
    op.drop_column("users", "time_zone")
