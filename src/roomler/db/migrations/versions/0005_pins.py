"""pins: who pinned a message and when

Revision ID: 18_pins
Revises: 18_reactions
Create Date: 2026-12-03 18:25:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "18_pins"
down_revision = "18_reactions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pinned_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("pinned_by", sa.String(length=24), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_messages_pinned_by_users"),
            "users",
            ["pinned_by"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_messages_pinned_by_users"), type_="foreignkey")
        batch_op.drop_column("pinned_by")
        batch_op.drop_column("pinned_at")
