"""notifications: mentions and direct messages per user; a channel muted per member

Revision ID: 18_notifications
Revises: 18_read_markers
Create Date: 2026-12-03 21:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "18_notifications"
down_revision = "18_read_markers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("tenant_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel_id", sa.String(length=24), nullable=False),
        sa.Column("message_id", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.String(length=24), nullable=False),
        sa.Column("created_at", roomler.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("read_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_notifications_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_notifications_channel_id_channels"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_notifications_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["users.id"],
            name=op.f("fk_notifications_actor_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "message_id", "user_id", name=op.f("uq_notifications_message_id_user_id")
        ),
    )
    op.create_index(
        "ix_notifications_user_tenant_created",
        "notifications",
        ["user_id", "tenant_id", "created_at", "id"],
    )
    with op.batch_alter_table("channel_members", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.text("false"))
        )


def downgrade() -> None:
    with op.batch_alter_table("channel_members", schema=None) as batch_op:
        batch_op.drop_column("muted")
    op.drop_index("ix_notifications_user_tenant_created", table_name="notifications")
    op.drop_table("notifications")
