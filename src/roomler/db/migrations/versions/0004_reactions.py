"""message reactions: who gave which unicode emoji to which message

Revision ID: 18_reactions
Revises: 0003
Create Date: 2026-12-03 18:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "18_reactions"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "message_reactions",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("message_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("emoji", sa.String(length=64), nullable=False),
        sa.Column("created_at", roomler.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_reactions_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_message_reactions_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_reactions")),
        sa.UniqueConstraint(
            "message_id",
            "user_id",
            "emoji",
            name=op.f("uq_message_reactions_message_id_user_id_emoji"),
        ),
    )
    with op.batch_alter_table("message_reactions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_message_reactions_message_id"), ["message_id"])
        batch_op.create_index(batch_op.f("ix_message_reactions_user_id"), ["user_id"])


def downgrade() -> None:
    with op.batch_alter_table("message_reactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_message_reactions_user_id"))
        batch_op.drop_index(batch_op.f("ix_message_reactions_message_id"))
    op.drop_table("message_reactions")
