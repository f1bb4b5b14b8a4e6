"""channel archive: when a channel was archived (read-only), None while in use

Revision ID: 21_channel_archive
Revises: 20_recordings
Create Date: 2026-12-04 16:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "21_channel_archive"
down_revision = "20_recordings"
branch_labels = None
depends_on = None


# Plain ALTER TABLE on both databases, as 18_profiles: a batch copy of `channels` would
# fail on SQLite, other tables pointing at it.
def upgrade() -> None:
    op.add_column(
        "channels",
        sa.Column("archived_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("channels", "archived_at")
