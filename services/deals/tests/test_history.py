"""Conversion facts: a deal's stage history and events let reports count entries and time exactly."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx

from crm_deals.testing import User, create_deal, default_pipeline, wait_for_events

# One deal's life, step by step: what is done, and what must follow.
# (action, target stage or reason, stage after, direction, skipped stages, status, extra event)
SCENARIO: list[tuple[str, str | None, str, str, list[str], str, str | None]] = [
    ("create", None, "New request", "created", [], "open", None),
    ("move", "Proposal sent", "Proposal sent", "forward", ["First call"], "open", None),
    ("move", "First call", "First call", "backward", [], "open", None),
    ("lose", "price", "Lost", "forward", [], "lost", "lost"),
    ("reopen", None, "First call", "backward", [], "open", "reopened"),
    ("move", "Meeting", "Meeting", "forward", ["Proposal sent"], "open", None),
    ("win", None, "Won", "forward", [], "won", "won"),
]
ENTRIES = {
    "New request": 1,
    "First call": 2,
    "Proposal sent": 1,
    "Meeting": 1,
    "Lost": 1,
    "Won": 1,
}


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


async def _act(
    api: httpx.AsyncClient,
    admin: User,
    deal_id: str,
    action: str,
    arg: str | None,
    ids: dict[str, str],
) -> dict[str, Any]:
    url = f"/deals/{deal_id}/{action}"
    body: dict[str, Any] | None = None
    if action == "move":
        body = {"stage_id": ids[arg or ""]}
    elif action == "lose":
        body = {"reason": arg}
    response = await api.post(url, json=body, headers=admin.headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_skip_back_lose_reopen_win_gives_exact_entries_and_durations(
    api: httpx.AsyncClient, admin: User, nats_url: str
) -> None:
    pipeline = await default_pipeline(api, admin)
    ids = {s["name"]: s["id"] for s in pipeline["stages"]}
    names = {v: k for k, v in ids.items()}
    deal = await create_deal(api, admin, amount="1000", currency="USD")
    states = [deal]
    for action, arg, stage, _, _, status, _ in SCENARIO[1:]:
        state = await _act(api, admin, deal["id"], action, arg, ids)
        assert names[state["stage_id"]] == stage, action
        assert state["status"] == status, action
        states.append(state)
    assert [s["version"] for s in states] == list(range(1, len(SCENARIO) + 1))

    history = (await api.get(f"/deals/{deal['id']}/history", headers=admin.headers)).json()
    assert [names[h["to_stage_id"]] for h in history] == [row[2] for row in SCENARIO]
    assert [h["from_stage_id"] for h in history] == [None] + [
        h["to_stage_id"] for h in history[:-1]
    ]
    assert [h["reason"] for h in history] == [
        "create",
        "move",
        "move",
        "lose",
        "reopen",
        "move",
        "win",
    ]
    # Each stay ends exactly when the next begins; only the last is still open.
    for stay, following in itertools.pairwise(history):
        assert stay["left_at"] == following["entered_at"]
    assert history[-1]["left_at"] is None
    assert all(h["moved_by"] == admin.id for h in history)
    assert Counter(names[h["to_stage_id"]] for h in history) == ENTRIES
    by_history: dict[str, timedelta] = defaultdict(timedelta)
    for stay in history[:-1]:
        by_history[names[stay["to_stage_id"]]] += _at(stay["left_at"]) - _at(stay["entered_at"])
    assert sum(by_history.values(), timedelta()) == _at(history[-1]["entered_at"]) - _at(
        deal["created_at"]
    )

    expected_types = 1 + (len(SCENARIO) - 1) + sum(1 for row in SCENARIO if row[6])
    events = await wait_for_events(
        nats_url, lambda evs: len(evs) >= expected_types + 1, "every deal event"
    )
    mine = [e for e in events if e["subject"] == deal["id"]]
    assert len(mine) == expected_types
    assert len({e["id"] for e in mine}) == len(mine)  # each event once on the stream
    transitions = [
        e for e in mine if e["type"] in ("crm.deals.deal.created", "crm.deals.deal.stage_changed")
    ]
    assert len(transitions) == len(SCENARIO)
    for event, (action, _, stage, direction, skipped, status, extra) in zip(
        transitions, SCENARIO, strict=True
    ):
        data = event["data"]
        move = data["transition"]
        assert names[move["to_stage_id"]] == stage, action
        assert move["direction"] == direction, action
        assert [names[s] for s in move["skipped_stage_ids"]] == skipped, action
        assert data["status"] == status, action
        stage_row = next(s for s in pipeline["stages"] if s["id"] == move["to_stage_id"])
        assert (move["to_position"], move["to_probability"], move["to_kind"]) == (
            stage_row["position"],
            stage_row["probability"],
            stage_row["kind"],
        )
        if extra:
            twin = next(
                e
                for e in mine
                if e["type"] == f"crm.deals.deal.{extra}"
                and e["data"]["version"] == data["version"]
            )
            assert twin["data"]["transition"] == move
    # Time in stage from the events alone equals the history's, stage by stage.
    by_events: dict[str, timedelta] = defaultdict(timedelta)
    entries: Counter[str] = Counter()
    for event in transitions:
        move = event["data"]["transition"]
        entries[names[move["to_stage_id"]]] += 1
        if move["from_stage_id"] is not None:
            by_events[names[move["from_stage_id"]]] += _at(move["left_at"]) - _at(
                move["from_entered_at"]
            )
    assert entries == ENTRIES
    assert by_events == by_history
    lost = next(e for e in mine if e["type"] == "crm.deals.deal.lost")
    assert lost["data"]["lost_reason"] == "price" and lost["data"]["amount"] == "1000.00"
    won = next(e for e in mine if e["type"] == "crm.deals.deal.won")
    assert won["data"]["lost_reason"] is None and won["data"]["closed_at"]
