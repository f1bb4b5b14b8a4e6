"""conferences and their participants: the meetings of a tenant and who attended

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 02:16:20.886928
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conferences",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("tenant_id", sa.String(length=24), nullable=False),
        sa.Column("channel_id", sa.String(length=24), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("conference_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("meeting_code", sa.String(length=11), nullable=False),
        sa.Column("organizer_id", sa.String(length=24), nullable=False),
        sa.Column("scheduled_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("started_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("created_at", roomler.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_id"],
            ["channels.id"],
            name=op.f("fk_conferences_channel_id_channels"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organizer_id"], ["users.id"], name=op.f("fk_conferences_organizer_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_conferences_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conferences")),
        sa.UniqueConstraint("meeting_code", name=op.f("uq_conferences_meeting_code")),
    )
    with op.batch_alter_table("conferences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_conferences_channel_id"), ["channel_id"], unique=False)
        batch_op.create_index(
            "ix_conferences_tenant_created", ["tenant_id", "created_at", "id"], unique=False
        )

    op.create_table(
        "conference_participants",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("conference_id", sa.String(length=24), nullable=False),
        sa.Column("user_id", sa.String(length=24), nullable=False),
        sa.Column("joined_at", roomler.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.Column("left_at", roomler.db.models.UtcDateTime(timezone=True), nullable=True),
        sa.Column("is_present", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_conference_participants_conference_id_conferences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_conference_participants_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conference_participants")),
    )
    with op.batch_alter_table("conference_participants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conference_participants_conference_id"), ["conference_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_conference_participants_user_id"), ["user_id"], unique=False
        )
        batch_op.create_index(
            "uq_conference_participants_present",
            ["conference_id", "user_id"],
            unique=True,
            sqlite_where=sa.text("is_present"),
            postgresql_where=sa.text("is_present"),
        )


def downgrade() -> None:
    # Dropping a table drops its indexes with it, on SQLite and PostgreSQL alike.
    op.drop_table("conference_participants")
    op.drop_table("conferences")
