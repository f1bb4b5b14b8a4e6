"""threads: a top-level message's reply count and last reply time, and who follows it

Revision ID: 18_threads
Revises: 18_pins
Create Date: 2026-12-03 18:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "18_threads"
down_revision = "18_pins"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reply_count", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("last_reply_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True)
        )
    # Threads replied to before this migration: count their live replies.
    op.execute(
        """
        UPDATE messages SET
          reply_count = (SELECT count(*) FROM messages AS r
                         WHERE r.thread_id = messages.id AND r.deleted_at IS NULL),
          last_reply_at = (SELECT max(r.created_at) FROM messages AS r
                           WHERE r.thread_id = messages.id AND r.deleted_at IS NULL)
        WHERE thread_id IS NULL
        """
    )
    op.create_table(
        "thread_followers",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("message_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", roomler.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_thread_followers_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_thread_followers_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_thread_followers")),
        sa.UniqueConstraint(
            "message_id", "user_id", name=op.f("uq_thread_followers_message_id_user_id")
        ),
    )
    with op.batch_alter_table("thread_followers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_thread_followers_message_id"), ["message_id"])
        batch_op.create_index(batch_op.f("ix_thread_followers_user_id"), ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("thread_followers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_thread_followers_user_id"))
        batch_op.drop_index(batch_op.f("ix_thread_followers_message_id"))
    op.drop_table("thread_followers")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("last_reply_at")
        batch_op.drop_column("reply_count")
