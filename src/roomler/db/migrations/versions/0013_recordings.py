"""recordings: one row per recorded producer of a conference

Revision ID: 20_recordings
Revises: 18_profiles
Create Date: 2026-12-04 14:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import roomler.db.models

revision = "20_recordings"
down_revision = "18_profiles"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recordings",
        sa.Column("id", sa.String(length=24), nullable=False),
        sa.Column("conference_id", sa.String(length=24), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("started_by", sa.String(length=24), nullable=True),
        sa.Column("user_id", sa.String(length=24), nullable=True),
        sa.Column("producer_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("frames", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("offset_ms", sa.Integer(), nullable=False),
        sa.Column("created_at", roomler.db.models.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conference_id"],
            ["conferences.id"],
            name=op.f("fk_recordings_conference_id_conferences"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["started_by"],
            ["users.id"],
            name=op.f("fk_recordings_started_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_recordings_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recordings")),
    )
    op.create_index(
        op.f("ix_recordings_conference_id"), "recordings", ["conference_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_recordings_conference_id"), table_name="recordings")
    op.drop_table("recordings")
