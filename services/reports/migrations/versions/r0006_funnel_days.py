"""rm_funnel_days: the funnel per UTC day of entry (a period's funnel sums days); the indexes a
period's funnel medians and managers read

Filled from the stored stays by the deal handler's own rule, so no rebuild is needed.

Revision ID: r0006
Revises: r0005
Create Date: 2026-11-30
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from crm_reports.aggregates import TARGETS
from crm_reports.funnel.facts import stays_part

revision: str = "r0006"
down_revision: str | None = "r0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# What a period's `managers` reads of the deals closed in it: from the index alone.
CLOSED_COLUMNS = [
    "status",
    "closed_at",
    "owner_id",
    "pipeline_id",
    "source",
    "amount_band",
    "cycle_days",
    "currency",
    "amount",
]


def _moment(value: Any) -> datetime | None:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # SQLite keeps UTC without a zone
    return value


def _fill() -> None:
    bind = op.get_bind()
    stages = {
        stage: (position, kind)
        for stage, position, kind in bind.execute(sa.text("SELECT id, position, kind FROM rm_stages"))
    }
    stays = bind.execute(
        sa.text(
            "SELECT s.deal_id, s.stage_id, s.pipeline_id, s.entered_at, s.left_at, s.days, "
            "d.owner_id, d.status FROM rm_stage_stays s JOIN rm_deals d ON d.id = s.deal_id "
            "ORDER BY s.deal_id"
        )
    ).mappings()
    totals: dict[tuple[str, tuple[Any, ...]], dict[str, int]] = defaultdict(
        lambda: defaultdict(int)
    )
    deal: list[dict[str, Any]] = []

    def add(rows: list[dict[str, Any]]) -> None:
        part = stays_part(rows[0]["owner_id"], rows[0]["status"], rows, stages, 1)
        for (target, key), counters in part.items():
            if target == "funnel_days":
                for name, value in counters.items():
                    totals[key][name] += value

    for row in stays:
        if deal and deal[0]["deal_id"] != row["deal_id"]:
            add(deal)
            deal = []
        deal.append(
            dict(row, entered_at=_moment(row["entered_at"]), left_at=_moment(row["left_at"]))
        )
    if deal:
        add(deal)
    table, key_columns, counters = TARGETS["funnel_days"]
    rows = [
        {**dict(zip(key_columns, key, strict=True)), **{c: n[c] for c in counters}}
        for key, n in totals.items()
        if any(n.values())
    ]
    if rows:
        op.bulk_insert(table, rows)


def upgrade() -> None:
    op.create_table(
        "rm_funnel_days",
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("stage_id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("previous_day", sa.Date, primary_key=True),
        *(
            sa.Column(name, sa.Integer, nullable=False)
            for name in ("stays", "finished", "won", "onward")
        ),
        sa.Column("stay_microseconds", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_rm_stage_stays_stage_entered",
        "rm_stage_stays",
        ["pipeline_id", "stage_id", "entered_at", "days", "owner_id"],
    )
    # Its columns lead the index above.
    op.drop_index("ix_rm_stage_stays_pipeline_stage", "rm_stage_stays")
    op.create_index("ix_rm_deals_closed", "rm_deals", CLOSED_COLUMNS)
    op.drop_index("ix_rm_deals_status_closed", "rm_deals")
    _fill()


def downgrade() -> None:
    op.create_index("ix_rm_deals_status_closed", "rm_deals", ["status", "closed_at"])
    op.drop_index("ix_rm_deals_closed", "rm_deals")
    op.create_index("ix_rm_stage_stays_pipeline_stage", "rm_stage_stays", ["pipeline_id", "stage_id"])
    op.drop_index("ix_rm_stage_stays_stage_entered", "rm_stage_stays")
    op.drop_table("rm_funnel_days")
