"""prepared all-time data: rm_deal_totals, rm_deal_cycles, rm_funnel_facts, rm_stay_lengths,
stay owner and length, deal cycle length, with the indexes that read medians in order

Everything is filled from the stored read models (the funnel facts by the deal handler's
own rule), so no rebuild is needed.

Revision ID: r0005
Revises: r0004
Create Date: 2026-11-29
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from crm_reports.aggregates import TARGETS
from crm_reports.funnel.facts import stays_part
from crm_reports.stats import bucket

revision: str = "r0005"
down_revision: str | None = "r0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _days(start: str, end: str) -> str:
    if op.get_bind().dialect.name == "postgresql":
        return f"(EXTRACT(EPOCH FROM ({end} - {start})) / 86400.0)"
    return f"(julianday({end}) - julianday({start}))"


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _fill_funnel_facts() -> None:
    """Each deal's part from its stays, summed (the same rule the deal handler applies).

    Lengths are bucketed from the `days` stored just above (the values medians read).
    """
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
        for target, counters in part.items():
            for name, value in counters.items():
                totals[target][name] += value

    for row in stays:
        if deal and deal[0]["deal_id"] != row["deal_id"]:
            add(deal)
            deal = []
        deal.append(
            dict(row, entered_at=_moment(row["entered_at"]), left_at=_moment(row["left_at"]))
        )
    if deal:
        add(deal)
    for name in ("funnel", "lengths"):
        table, key_columns, counters = TARGETS[name]
        rows = [
            {**dict(zip(key_columns, key, strict=True)), **{c: n[c] for c in counters}}
            for (target, key), n in totals.items()
            if target == name and any(n.values())
        ]
        if rows:
            op.bulk_insert(table, rows)


def _fill_deal_cycles() -> None:
    counts: dict[tuple[str, str, int], int] = defaultdict(int)
    won = sa.text("SELECT owner_id, pipeline_id, cycle_days FROM rm_deals WHERE cycle_days IS NOT NULL")
    for owner, pipeline, days in op.get_bind().execute(won):
        counts[(owner, pipeline, bucket(days))] += 1
    table, key_columns, _ = TARGETS["cycles"]
    rows = [{**dict(zip(key_columns, key, strict=True)), "won": n} for key, n in counts.items()]
    if rows:
        op.bulk_insert(table, rows)


def upgrade() -> None:
    with op.batch_alter_table("rm_stage_stays") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(36)))
        batch.add_column(sa.Column("days", sa.Float))
    with op.batch_alter_table("rm_deals") as batch:
        batch.add_column(sa.Column("cycle_days", sa.Float))
    op.execute(
        "UPDATE rm_stage_stays SET owner_id = "
        "(SELECT owner_id FROM rm_deals WHERE rm_deals.id = rm_stage_stays.deal_id), "
        f"days = {_days('entered_at', 'left_at')}"
    )
    op.execute(
        f"UPDATE rm_deals SET cycle_days = {_days('created_at', 'closed_at')} "
        "WHERE status = 'won' AND closed_at IS NOT NULL"
    )
    op.create_index(
        "ix_rm_stage_stays_days", "rm_stage_stays", ["pipeline_id", "stage_id", "days", "owner_id"]
    )
    op.create_index(
        "ix_rm_deals_owner_status_cycle",
        "rm_deals",
        ["owner_id", "status", "cycle_days", "pipeline_id"],
    )
    op.create_table(
        "rm_deal_totals",
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False) for name in ("created", "won", "lost")),
        sa.Column("won_amount", sa.Numeric(20, 4), nullable=False),
    )
    closed = "closed_at IS NOT NULL AND status = "
    op.execute(
        "INSERT INTO rm_deal_totals "
        "(owner_id, pipeline_id, currency, created, won, lost, won_amount) "
        "SELECT owner_id, pipeline_id, currency, count(*), "
        f"sum(CASE WHEN {closed}'won' THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {closed}'lost' THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {closed}'won' THEN coalesce(amount, 0) ELSE 0 END) "
        "FROM rm_deals GROUP BY owner_id, pipeline_id, currency"
    )
    op.create_table(
        "rm_funnel_facts",
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("stage_id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(36), primary_key=True),
        *(
            sa.Column(name, sa.Integer, nullable=False)
            for name in ("entered", "moved_on", "won", "onward", "finished")
        ),
        sa.Column("stay_microseconds", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "rm_deal_cycles",
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("won", sa.Integer, nullable=False),
    )
    _fill_deal_cycles()
    op.create_table(
        "rm_stay_lengths",
        *(
            sa.Column(name, sa.String(36), primary_key=True)
            for name in ("pipeline_id", "stage_id", "owner_id")
        ),
        sa.Column("bucket", sa.Integer, primary_key=True),
        sa.Column("stays", sa.Integer, nullable=False),
    )
    _fill_funnel_facts()


def downgrade() -> None:
    op.drop_table("rm_stay_lengths")
    op.drop_table("rm_deal_cycles")
    op.drop_table("rm_funnel_facts")
    op.drop_table("rm_deal_totals")
    op.drop_index("ix_rm_deals_owner_status_cycle", "rm_deals")
    op.drop_index("ix_rm_stage_stays_days", "rm_stage_stays")
    with op.batch_alter_table("rm_deals") as batch:
        batch.drop_column("cycle_days")
    with op.batch_alter_table("rm_stage_stays") as batch:
        batch.drop_column("days")
        batch.drop_column("owner_id")
