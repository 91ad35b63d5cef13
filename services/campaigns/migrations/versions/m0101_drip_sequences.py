"""drip sequences: sequences, enrolments, sends, segment members seen

Revision ID: m0101
Revises: m0100
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "m0101"
down_revision: str | None = "m0100"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drip_sequences",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("trigger_segment_id", sa.String(36)),
        sa.Column("trigger_stage_id", sa.String(36)),
        sa.Column("steps", sa.JSON, nullable=False),
        sa.Column("segment_baseline_at", TS),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("deleted_at", TS),
    )
    op.create_table(
        "drip_enrolments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "sequence_id",
            sa.String(36),
            sa.ForeignKey("drip_sequences.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("step_started_at", TS, nullable=False),
        sa.Column("due_at", TS, nullable=False),
        sa.Column("trigger_ref", sa.String(100)),
        sa.Column("enrolled_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("finished_at", TS),
        sa.Column("last_error", sa.String(500)),
        sa.UniqueConstraint("sequence_id", "contact_id", name="uq_drip_enrolments_contact"),
    )
    op.create_index("ix_drip_enrolments_contact_id", "drip_enrolments", ["contact_id"])
    op.create_index("ix_drip_enrolments_due", "drip_enrolments", ["status", "due_at"])
    op.create_table(
        "drip_sends",
        sa.Column(
            "enrolment_id",
            sa.String(36),
            sa.ForeignKey("drip_enrolments.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("step", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(120), nullable=False, unique=True),
        sa.Column("sequence_id", sa.String(36), nullable=False),
        sa.Column("contact_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("template_id", sa.String(36), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(40)),
        sa.Column("track_id", sa.String(36), nullable=False),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index("ix_drip_sends_sequence_id", "drip_sends", ["sequence_id"])
    op.create_index("ix_drip_sends_track", "drip_sends", ["track_id", "contact_id"])
    op.create_table(
        "drip_segment_members",
        sa.Column(
            "sequence_id",
            sa.String(36),
            sa.ForeignKey("drip_sequences.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("contact_id", sa.String(36), primary_key=True),
        sa.Column("seen_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drip_segment_members")
    op.drop_table("drip_sends")
    op.drop_table("drip_enrolments")
    op.drop_table("drip_sequences")
