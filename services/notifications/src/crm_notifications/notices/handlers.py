"""Notices from the bus: the `send.in_app` command, and the staff events the CRM tells people about."""

from __future__ import annotations

from crm_kernel.consumer import EventContext, Handlers
from crm_kernel.contracts.contacts import (
    BulkReadSuspected,
    LeadReceived,
    OwnerReassigned,
    TaskDueSoon,
    TaskOverdue,
)
from crm_kernel.contracts.notifications import SendInApp
from crm_notifications.notices.service import Notice, store


def register(handlers: Handlers) -> None:
    @handlers.on(SendInApp)
    async def on_send_in_app(command: SendInApp, ctx: EventContext) -> None:
        await store(
            ctx.session,
            Notice(
                key=command.key,
                user_id=command.user_id,
                role=command.role,
                title=command.title,
                body=command.body,
                link=command.link,
                category=command.category,
                source_type=command.source_type,
                source_id=command.source_id,
            ),
        )

    @handlers.on(LeadReceived)
    async def on_lead_received(event: LeadReceived, ctx: EventContext) -> None:
        title = f"New lead: {event.title}" if event.title else "New lead"
        await store(
            ctx.session,
            Notice(
                key=f"lead:{event.id}",
                user_id=event.owner_id,
                title=title,
                body=(event.message or "")[:2000],
                link=f"/contacts/{event.contact_id}",
                category="lead",
                source_type="contact",
                source_id=event.contact_id,
            ),
        )

    @handlers.on(BulkReadSuspected)
    async def on_bulk_read_suspected(event: BulkReadSuspected, ctx: EventContext) -> None:
        await store(
            ctx.session,
            Notice(
                key=f"bulk_read:{event.user_id}:{event.window_started_at}",
                role="admin",
                title="Bulk reading of contacts suspected",
                body=(
                    f"User {event.user_id} read {event.distinct_contacts} contacts within an "
                    f"hour (threshold {event.threshold})."
                ),
                link=f"/audit?actor_id={event.user_id}",
                category="security",
                source_type="user",
                source_id=event.user_id,
            ),
        )

    @handlers.on(OwnerReassigned)
    async def on_owner_reassigned(event: OwnerReassigned, ctx: EventContext) -> None:
        await store(
            ctx.session,
            Notice(
                key=f"reassigned:{event.job_id}",
                user_id=event.owner_id,
                title="Records were reassigned to you",
                body=f"{event.contacts} contacts and {event.companies} companies ({event.reason}).",
                link="/contacts?owner=me",
                category="assignment",
            ),
        )

    @handlers.on(TaskDueSoon)
    async def on_task_due_soon(event: TaskDueSoon, ctx: EventContext) -> None:
        await _task_notice(ctx, event, "due_soon", f"Task due soon: {event.title}")

    @handlers.on(TaskOverdue)
    async def on_task_overdue(event: TaskOverdue, ctx: EventContext) -> None:
        await _task_notice(ctx, event, "overdue", f"Task overdue: {event.title}")


async def _task_notice(
    ctx: EventContext, task: TaskDueSoon | TaskOverdue, kind: str, title: str
) -> None:
    await store(
        ctx.session,
        Notice(
            key=f"task:{task.id}:{kind}:{task.due_at}",
            user_id=task.assignee_id,
            title=title,
            body=f"Due {task.due_at}",
            link=f"/tasks/{task.id}",
            category="task",
            source_type="task",
            source_id=task.id,
        ),
    )
