"""read markers: the newest message each channel member has read

Revision ID: 18_read_markers
Revises: 18_invitations
Create Date: 2026-12-03 19:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "18_read_markers"
down_revision = "18_invitations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("channel_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_read_message_id", sa.String(length=24), nullable=True))
        batch_op.add_column(
            sa.Column("last_read_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True)
        )
    # Members before this migration kept their read state in the browser: start them with
    # everything read rather than a channel's whole history unread.
    op.execute(
        """
        UPDATE channel_members SET last_read_at = (
          SELECT max(m.created_at) FROM messages AS m
          WHERE m.channel_id = channel_members.channel_id AND m.thread_id IS NULL)
        """
    )


def downgrade() -> None:
    with op.batch_alter_table("channel_members", schema=None) as batch_op:
        batch_op.drop_column("last_read_at")
        batch_op.drop_column("last_read_message_id")
