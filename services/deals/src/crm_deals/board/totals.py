"""Running board totals: deals, priced deals and their sum per (pipeline, stage, owner, currency).

The board's counts and sums would otherwise aggregate every deal of the
pipeline on each request (about 100-150 ms at 100,000 deals); summing these
rows (stages x owners x currencies) takes a millisecond, and the owner column
keeps "who sees what" exact. They are kept by a flush hook on the ORM session:
every flush that inserts a deal or changes its pipeline, stage, owner,
currency or amount adds its deltas in the same transaction, whichever use
case made the change (create, move, win, lose, reopen, edit, stage deletion,
reassignment, leads). Deals must therefore only be written through the ORM.
Rows are updated in key order, so concurrent transactions cannot deadlock on
them.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Integer, Numeric, String, Table, delete, event, func, insert, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, UOWTransaction, mapped_column
from sqlalchemy.orm.attributes import get_history

from crm_deals.deals.models import Deal
from crm_deals.models import Base
from crm_deals.money import STORED_SCALE

KEY = ("pipeline_id", "stage_id", "owner_id", "currency")
Key = tuple[str, str, str, str]


class BoardTotal(Base):
    __tablename__ = "board_totals"

    pipeline_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    deals: Mapped[int] = mapped_column(Integer)
    # Deals with an amount (a currency whose deals have none shows no total).
    priced: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(20, STORED_SCALE))


def _before(deal: Deal, name: str) -> Any:
    """The attribute's value before this flush."""
    history = get_history(deal, name)
    if history.deleted:
        return history.deleted[0]
    return history.unchanged[0] if history.unchanged else getattr(deal, name)


def _deltas(session: Session) -> dict[Key, list[Any]]:
    deltas: dict[Key, list[Any]] = defaultdict(lambda: [0, 0, Decimal(0)])

    def add(key: Key, amount: Decimal | None, sign: int) -> None:
        entry = deltas[key]
        entry[0] += sign
        if amount is not None:
            entry[1] += sign
            entry[2] += sign * Decimal(amount)

    for deal in session.new:
        if isinstance(deal, Deal):
            add(tuple(getattr(deal, n) for n in KEY), deal.amount, 1)
    for deal in session.dirty:
        if not isinstance(deal, Deal) or not any(
            get_history(deal, n).has_changes() for n in (*KEY, "amount")
        ):
            continue
        add(tuple(_before(deal, n) for n in KEY), _before(deal, "amount"), -1)
        add(tuple(getattr(deal, n) for n in KEY), deal.amount, 1)
    for deal in session.deleted:
        if isinstance(deal, Deal):
            add(tuple(_before(deal, n) for n in KEY), _before(deal, "amount"), -1)
    return {k: v for k, v in deltas.items() if v != [0, 0, 0]}


@event.listens_for(Session, "after_flush")
def _keep_totals(session: Session, _flush: UOWTransaction) -> None:
    """Add this flush's deal changes to the running totals (same transaction)."""
    deltas = _deltas(session)
    if not deltas:
        return
    dialect = session.get_bind().dialect.name
    upsert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    table = cast(Table, BoardTotal.__table__)
    for key in sorted(deltas):
        count, priced, amount = deltas[key]
        statement = upsert(table).values(
            **dict(zip(KEY, key, strict=True)), deals=count, priced=priced, amount=amount
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=list(KEY),
                set_={
                    "deals": table.c.deals + statement.excluded.deals,
                    "priced": table.c.priced + statement.excluded.priced,
                    "amount": table.c.amount + statement.excluded.amount,
                },
            )
        )


async def rebuild_totals(session: AsyncSession) -> None:
    """Recompute every row from the deals (after a bulk load that bypassed the ORM)."""
    await session.execute(delete(BoardTotal))
    grouped = select(
        *(getattr(Deal, n) for n in KEY),
        func.count(),
        func.count(Deal.amount),
        func.coalesce(func.sum(Deal.amount), 0),
    ).group_by(*(getattr(Deal, n) for n in KEY))
    await session.execute(
        insert(BoardTotal).from_select([*KEY, "deals", "priced", "amount"], grouped)
    )
