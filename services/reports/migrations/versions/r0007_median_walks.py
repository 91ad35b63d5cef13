"""month rows for long periods: rm_deal_months, rm_deal_mix_months, rm_funnel_months; stay
length histograms per day and month (rm_stay_length_days, rm_stay_length_months); the
indexes a long period's exact medians walk in length order: stays by (pipeline, stage, days,
entered_at, owner), won deals by (owner, status, cycle_days, closed_at, pipeline)

Each index replaces the one of the same name that lacked the period's column (the
all-time medians read them the same way). The month rows are summed from the day rows
and the closed deals, the histograms from the finished stays of known deals (the deal
handler's rule), so no rebuild is needed.

Revision ID: r0007
Revises: r0006
Create Date: 2026-11-30
"""

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

import sqlalchemy as sa
from alembic import op

from crm_reports.stats import bucket

revision: str = "r0007"
down_revision: str | None = "r0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _day(value: Any) -> date:
    """The UTC day of a stored date or time."""
    if isinstance(value, str):  # SQLite returns dates and times as text
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        value = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).date()
    return cast(date, value)


def _month(value: Any) -> date:
    return _day(value).replace(day=1)


def _sum_by_month(
    table: sa.Table, query: str, key: Sequence[str], month_of: str, counters: Sequence[str]
) -> None:
    """Rows of `query` summed per month (of the column `month_of`) and the other key columns."""
    sums: dict[tuple[Any, ...], dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for row in op.get_bind().execute(sa.text(query)).mappings():
        group = tuple(
            _month(row[month_of])
            if k == "month"
            else date.fromisoformat(row[k])
            if k == "previous_day" and isinstance(row[k], str)  # SQLite: text
            else row[k]
            for k in key
        )
        group = _collapse(group, key)
        for c in counters:
            value = row[c]
            # SQLite returns NUMERIC as a float: keep the amounts exact.
            sums[group][c] += Decimal(str(value)) if isinstance(value, float) else value
    rows = [{**dict(zip(key, group, strict=True)), **dict(n)} for group, n in sums.items()]
    if rows:
        op.bulk_insert(table, rows)


def _collapse(group: tuple[Any, ...], key: Sequence[str]) -> tuple[Any, ...]:
    """A month row's previous entry within the month itself is the month's first day
    (`crm_reports.funnel.facts.month_previous`)."""
    if "previous_day" not in key:
        return group
    row = dict(zip(key, group, strict=True))
    row["previous_day"] = min(row["previous_day"], row["month"])
    return tuple(row[k] for k in key)


DEAL_COUNTERS = ("created", "won", "lost", "won_amount")
FUNNEL_COUNTERS = ("stays", "finished", "won", "onward", "stay_microseconds")


def _fill_lengths(days: sa.Table, months: sa.Table) -> None:
    """Finished stays of known deals per pipeline, day (and month) of entry, stage, bucket."""
    per_day: dict[tuple[Any, ...], int] = defaultdict(int)
    per_month: dict[tuple[Any, ...], int] = defaultdict(int)
    stays = op.get_bind().execute(
        sa.text(
            "SELECT s.pipeline_id, s.stage_id, s.entered_at, s.days FROM rm_stage_stays s "
            "JOIN rm_deals d ON d.id = s.deal_id "
            "WHERE s.left_at IS NOT NULL AND s.days IS NOT NULL"
        )
    )
    for pipeline, stage, entered_at, length in stays:
        day = _day(entered_at)
        index = bucket(length)
        per_day[(pipeline, day, stage, index)] += 1
        per_month[(pipeline, day.replace(day=1), stage, index)] += 1
    for table, sums, period in ((days, per_day, "day"), (months, per_month, "month")):
        rows = [
            {"pipeline_id": p, period: when, "stage_id": s, "bucket": b, "stays": n}
            for (p, when, s, b), n in sums.items()
        ]
        if rows:
            op.bulk_insert(table, rows)


def upgrade() -> None:
    months = op.create_table(
        "rm_deal_months",
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False) for name in ("created", "won", "lost")),
        sa.Column("won_amount", sa.Numeric(20, 4), nullable=False),
    )
    mix = op.create_table(
        "rm_deal_mix_months",
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("source", sa.String(40), primary_key=True),
        sa.Column("amount_band", sa.String(12), primary_key=True),
        sa.Column("won", sa.Integer, nullable=False),
        sa.Column("lost", sa.Integer, nullable=False),
    )
    funnel = op.create_table(
        "rm_funnel_months",
        sa.Column("pipeline_id", sa.String(36), primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
        sa.Column("stage_id", sa.String(36), primary_key=True),
        sa.Column("owner_id", sa.String(36), primary_key=True),
        sa.Column("previous_day", sa.Date, primary_key=True),
        *(
            sa.Column(name, sa.Integer, nullable=False)
            for name in ("stays", "finished", "won", "onward")
        ),
        sa.Column("stay_microseconds", sa.BigInteger, nullable=False),
    )
    lengths = [
        op.create_table(
            f"rm_stay_length_{period}s",
            sa.Column("pipeline_id", sa.String(36), primary_key=True),
            sa.Column(period, sa.Date, primary_key=True),
            sa.Column("stage_id", sa.String(36), primary_key=True),
            sa.Column("bucket", sa.Integer, primary_key=True),
            sa.Column("stays", sa.Integer, nullable=False),
        )
        for period in ("day", "month")
    ]
    _fill_lengths(*lengths)
    _sum_by_month(
        months,
        "SELECT * FROM rm_deal_days",
        ("month", "owner_id", "pipeline_id", "currency"),
        "day",
        DEAL_COUNTERS,
    )
    _sum_by_month(
        mix,
        "SELECT owner_id, pipeline_id, COALESCE(source, 'none') AS source, amount_band, "
        "closed_at, CASE WHEN status = 'won' THEN 1 ELSE 0 END AS won, "
        "CASE WHEN status = 'lost' THEN 1 ELSE 0 END AS lost FROM rm_deals "
        "WHERE status IN ('won', 'lost') AND closed_at IS NOT NULL",
        ("month", "owner_id", "pipeline_id", "source", "amount_band"),
        "closed_at",
        ("won", "lost"),
    )
    _sum_by_month(
        funnel,
        "SELECT * FROM rm_funnel_days",
        ("pipeline_id", "month", "stage_id", "owner_id", "previous_day"),
        "day",
        FUNNEL_COUNTERS,
    )
    op.drop_index("ix_rm_stage_stays_days", "rm_stage_stays")
    op.create_index(
        "ix_rm_stage_stays_days",
        "rm_stage_stays",
        ["pipeline_id", "stage_id", "days", "entered_at", "owner_id"],
    )
    op.drop_index("ix_rm_deals_owner_status_cycle", "rm_deals")
    op.create_index(
        "ix_rm_deals_owner_status_cycle",
        "rm_deals",
        ["owner_id", "status", "cycle_days", "closed_at", "pipeline_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_rm_deals_owner_status_cycle", "rm_deals")
    op.create_index(
        "ix_rm_deals_owner_status_cycle",
        "rm_deals",
        ["owner_id", "status", "cycle_days", "pipeline_id"],
    )
    op.drop_index("ix_rm_stage_stays_days", "rm_stage_stays")
    op.create_index(
        "ix_rm_stage_stays_days", "rm_stage_stays", ["pipeline_id", "stage_id", "days", "owner_id"]
    )
    for table in (
        "rm_stay_length_months",
        "rm_stay_length_days",
        "rm_funnel_months",
        "rm_deal_mix_months",
        "rm_deal_months",
    ):
        op.drop_table(table)
