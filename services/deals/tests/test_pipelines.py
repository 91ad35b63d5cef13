"""Pipelines and stages: the default pipeline, edits by managers only, deleting a stage."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

import crm_deals
from crm_deals.main import create_app
from crm_deals.pipelines.service import ensure_default_pipeline
from crm_deals.testing import (
    User,
    create_deal,
    default_pipeline,
    new_user,
    settings_for,
    wait_for_events,
)
from crm_kernel.auth import Role
from crm_kernel.db import Database
from crm_kernel.migrate import migrate, service_migrations
from crm_kernel.tables import outbox
from crm_kernel.testing import serve_in_process

ENGLISH = ["New request", "First call", "Proposal sent", "Meeting", "Won", "Lost"]
RUSSIAN = ["Заявка", "Первый звонок", "Отправлено КП", "Встреча", "Продажа", "Отказ"]


async def test_default_pipeline_exists_on_first_start(api: httpx.AsyncClient, admin: User) -> None:
    pipeline = await default_pipeline(api, new_user(Role.SALES_REP))
    assert [s["name"] for s in pipeline["stages"]] == ENGLISH
    assert [s["position"] for s in pipeline["stages"]] == list(range(6))
    assert [s["kind"] for s in pipeline["stages"]] == ["open"] * 4 + ["won", "lost"]
    assert [s["probability"] for s in pipeline["stages"]] == ["10", "20", "50", "70", "100", "0"]


async def test_default_pipeline_speaks_russian_with_crm_locale_ru(
    db_url: str, nats_url: str, tmp_dir: Path, admin: User
) -> None:
    app = create_app(settings_for(db_url, nats_url, tmp_dir, CRM_LOCALE="ru"))
    async with serve_in_process(app) as base_url:
        async with httpx.AsyncClient(base_url=f"{base_url}/api/v1") as client:
            pipeline = await default_pipeline(client, admin)
    assert [s["name"] for s in pipeline["stages"]] == RUSSIAN


async def test_replicas_starting_together_create_one_default_pipeline(db_url: str) -> None:
    replicas = [Database(db_url) for _ in range(4)]
    try:
        await migrate(replicas[0], service_migrations(crm_deals.__file__))
        created = await asyncio.gather(
            *(ensure_default_pipeline(db, locale="en") for db in replicas)
        )
        assert created.count(True) == 1
        assert await ensure_default_pipeline(replicas[0], locale="en") is False
        async with replicas[0].session() as session:
            events = await session.scalar(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.subject == "crm.deals.pipeline.created")
            )
            stages = await session.scalar(select(func.count()).select_from(crm_deals_stages()))
        assert events == 1
        assert stages == 6
    finally:
        for db in replicas:
            await db.dispose()


def crm_deals_stages() -> Any:
    from crm_deals.pipelines.models import Stage

    return Stage.__table__


async def test_manager_creates_renames_adds_and_reorders_stages(
    api: httpx.AsyncClient, nats_url: str
) -> None:
    head = new_user(Role.HEAD_OF_SALES)
    created = await api.post(
        "/pipelines",
        json={
            "name": "Partners",
            "stages": [
                {"name": "Lead", "probability": 5},
                {"name": "Contract", "probability": "62.5"},
                {"name": "Signed", "probability": 100, "kind": "won"},
                {"name": "Dropped", "probability": 0, "kind": "lost"},
            ],
        },
        headers=head.headers,
    )
    assert created.status_code == 201, created.text
    pipeline = created.json()
    assert created.headers["etag"] == '"1"'
    pid = pipeline["id"]
    renamed = await api.patch(
        f"/pipelines/{pid}",
        json={"name": "Partner sales"},
        headers={**head.headers, "If-Match": '"1"'},
    )
    assert renamed.status_code == 200 and renamed.json()["name"] == "Partner sales"
    added = await api.post(
        f"/pipelines/{pid}/stages", json={"name": "Demo", "probability": 30}, headers=head.headers
    )
    assert added.status_code == 201, added.text
    names = [s["name"] for s in added.json()["stages"]]
    assert names == ["Lead", "Contract", "Demo", "Signed", "Dropped"]
    ids = {s["name"]: s["id"] for s in added.json()["stages"]}
    order = [ids[n] for n in ("Demo", "Lead", "Contract", "Signed", "Dropped")]
    reordered = await api.put(
        f"/pipelines/{pid}/stages/order", json={"stage_ids": order}, headers=head.headers
    )
    assert reordered.status_code == 200, reordered.text
    assert [s["id"] for s in reordered.json()["stages"]] == order
    assert [s["position"] for s in reordered.json()["stages"]] == [0, 1, 2, 3, 4]
    edited = await api.patch(
        f"/pipelines/{pid}/stages/{ids['Demo']}",
        json={"name": "Demo call", "probability": 35},
        headers=head.headers,
    )
    assert edited.status_code == 200
    assert edited.json()["stages"][0] == {
        "id": ids["Demo"],
        "name": "Demo call",
        "position": 0,
        "probability": "35",
        "kind": "open",
    }
    assert edited.json()["version"] == 5
    events = await wait_for_events(
        nats_url,
        lambda evs: sum(e["subject"] == pid for e in evs) == 5,
        "five pipeline events",
    )
    mine = [e for e in events if e["subject"] == pid]
    assert [e["type"].rsplit(".", 1)[1] for e in mine] == ["created"] + ["updated"] * 4
    assert [e["data"]["change"] for e in mine] == [
        "created",
        "renamed",
        "stage_added",
        "stages_reordered",
        "stage_updated",
    ]
    assert [e["data"]["version"] for e in mine] == [1, 2, 3, 4, 5]
    assert mine[-1]["data"]["stages"][0]["name"] == "Demo call"


async def test_stale_if_match_on_a_pipeline_is_412(api: httpx.AsyncClient, admin: User) -> None:
    pipeline = await default_pipeline(api, admin)
    first = await api.patch(
        f"/pipelines/{pipeline['id']}",
        json={"name": "Main"},
        headers={**admin.headers, "If-Match": f'"{pipeline["version"]}"'},
    )
    assert first.status_code == 200
    stale = await api.patch(
        f"/pipelines/{pipeline['id']}",
        json={"name": "Other"},
        headers={**admin.headers, "If-Match": f'"{pipeline["version"]}"'},
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"].startswith("application/problem+json")
    assert (await default_pipeline(api, admin))["name"] == "Main"


async def test_reps_and_marketers_cannot_edit_pipelines(
    api: httpx.AsyncClient, admin: User
) -> None:
    pipeline = await default_pipeline(api, admin)
    for role in (Role.SALES_REP, Role.MARKETER):
        user = new_user(role)
        renamed = await api.patch(
            f"/pipelines/{pipeline['id']}", json={"name": "Mine"}, headers=user.headers
        )
        assert renamed.status_code == 403
        created = await api.post("/pipelines", json={"name": "Mine"}, headers=user.headers)
        assert created.status_code == 403
    assert (await default_pipeline(api, admin))["version"] == pipeline["version"]


async def test_bad_pipeline_input_is_422_naming_the_field(
    api: httpx.AsyncClient, admin: User
) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        (
            {
                "name": "P",
                "stages": [
                    {"name": "A", "probability": 10},
                    {"name": "B", "probability": 100, "kind": "won"},
                    {"name": "C", "probability": 100, "kind": "won"},
                ],
            },
            "stages",
        ),
        (
            {
                "name": "P",
                "stages": [
                    {"name": "A", "probability": 101},
                    {"name": "B", "probability": 100, "kind": "won"},
                    {"name": "C", "probability": 0, "kind": "lost"},
                ],
            },
            "stages.0.probability",
        ),
    ]
    for body, field in cases:
        response = await api.post("/pipelines", json=body, headers=admin.headers)
        assert response.status_code == 422, body
        assert field in [e["field"] for e in response.json()["errors"]], response.json()
    assert len((await api.get("/pipelines", headers=admin.headers)).json()) == 1


async def test_deleting_a_stage_with_deals_needs_a_target_and_moves_them(
    api: httpx.AsyncClient, admin: User, nats_url: str
) -> None:
    pipeline = await default_pipeline(api, admin)
    new_request, first_call = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    won = pipeline["stages"][4]["id"]
    deal = await create_deal(api, admin, stage_id=first_call)
    url = f"/pipelines/{pipeline['id']}/stages/{first_call}"
    refused = await api.delete(url, headers=admin.headers)
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["field"] == "target_stage_id"
    to_won = await api.delete(url, params={"target_stage_id": won}, headers=admin.headers)
    assert to_won.status_code == 422
    assert (
        await api.delete(f"/pipelines/{pipeline['id']}/stages/{won}", headers=admin.headers)
    ).status_code == 409
    deleted = await api.delete(url, params={"target_stage_id": new_request}, headers=admin.headers)
    assert deleted.status_code == 200, deleted.text
    assert [s["name"] for s in deleted.json()["stages"]] == [
        "New request",
        "Proposal sent",
        "Meeting",
        "Won",
        "Lost",
    ]
    assert [s["position"] for s in deleted.json()["stages"]] == [0, 1, 2, 3, 4]
    moved = (await api.get(f"/deals/{deal['id']}", headers=admin.headers)).json()
    assert moved["stage_id"] == new_request and moved["version"] == 2
    history = (await api.get(f"/deals/{deal['id']}/history", headers=admin.headers)).json()
    assert [(h["from_stage_id"], h["to_stage_id"], h["reason"]) for h in history] == [
        (None, first_call, "create"),
        (first_call, new_request, "stage_deleted"),
    ]
    assert history[0]["left_at"] == history[1]["entered_at"]
    events = await wait_for_events(
        nats_url,
        lambda evs: (
            any(e["type"] == "crm.deals.deal.stage_changed" for e in evs)
            and any(e["data"].get("change") == "stage_deleted" for e in evs)
        ),
        "stage_changed and pipeline stage_deleted",
    )
    changed = [e for e in events if e["type"] == "crm.deals.deal.stage_changed"]
    assert len(changed) == 1
    assert changed[0]["data"]["transition"]["reason"] == "stage_deleted"
    assert changed[0]["data"]["transition"]["to_stage_id"] == new_request
    removal = next(e for e in events if e["data"].get("change") == "stage_deleted")
    assert removal["data"]["deleted_stage_id"] == first_call
    assert removal["data"]["target_stage_id"] == new_request


async def test_deleting_an_empty_stage_needs_no_target(api: httpx.AsyncClient, admin: User) -> None:
    pipeline = await default_pipeline(api, admin)
    meeting = pipeline["stages"][3]["id"]
    deleted = await api.delete(
        f"/pipelines/{pipeline['id']}/stages/{meeting}", headers=admin.headers
    )
    assert deleted.status_code == 200
    assert meeting not in [s["id"] for s in deleted.json()["stages"]]
    unknown = await api.delete(
        f"/pipelines/{pipeline['id']}/stages/{uuid.uuid4()}", headers=admin.headers
    )
    assert unknown.status_code == 404


async def test_no_deal_is_left_in_a_stage_deleted_while_deals_move_into_it(
    api: httpx.AsyncClient, admin: User
) -> None:
    pipeline = await default_pipeline(api, admin)
    new_request, first_call = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    deals = [await create_deal(api, admin) for _ in range(6)]
    moves = [
        api.post(f"/deals/{d['id']}/move", json={"stage_id": first_call}, headers=admin.headers)
        for d in deals
    ]
    delete = api.delete(
        f"/pipelines/{pipeline['id']}/stages/{first_call}",
        params={"target_stage_id": new_request},
        headers=admin.headers,
    )
    *moved, deleted = await asyncio.gather(*moves, delete)
    assert deleted.status_code == 200, deleted.text
    for response in moved:
        assert response.status_code in (200, 422), response.text
        if response.status_code == 422:
            assert response.json()["errors"][0]["field"] == "stage_id"
    for deal in deals:
        now = (await api.get(f"/deals/{deal['id']}", headers=admin.headers)).json()
        assert now["stage_id"] == new_request
        history = (await api.get(f"/deals/{deal['id']}/history", headers=admin.headers)).json()
        assert history[-1]["to_stage_id"] == new_request and history[-1]["left_at"] is None
        assert all(a["left_at"] == b["entered_at"] for a, b in itertools.pairwise(history))
