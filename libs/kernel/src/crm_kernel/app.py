"""The frame of every service: app factory, lifespan (database, bus, relay, consumers), health."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from crm_kernel import directory
from crm_kernel.auth import TokenKeys
from crm_kernel.bus import Bus
from crm_kernel.consumer import Consumer, Handlers
from crm_kernel.db import Database
from crm_kernel.migrate import migrate
from crm_kernel.outbox import OutboxRelay
from crm_kernel.problems import install_problem_handlers
from crm_kernel.request_id import RequestIdMiddleware
from crm_kernel.settings import ServiceSettings
from crm_kernel.telemetry import instrument_app, instrument_engine, setup_tracing

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# A stuck background task must not hang shutdown (an orchestrator would kill it anyway).
TASK_STOP_SECONDS = 10.0

Hook = Callable[["Runtime"], Awaitable[None]]
# A readiness check of something beyond the database and the bus: each part it
# checks -> "ok" or what is wrong.
ReadinessCheck = Callable[["Runtime"], Awaitable[dict[str, str]]]


@dataclass
class Runtime:
    """What a running service holds: its settings, database, bus and background tasks."""

    settings: ServiceSettings
    db: Database
    bus: Bus
    relay: OutboxRelay
    consumers: list[Consumer] = field(default_factory=list)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run a background loop for the life of the service; a crash is logged loudly."""
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        task.add_done_callback(_report_crash)
        self.tasks.append(task)


async def repeat(
    tick: Callable[[], Awaitable[int]], *, interval: float, batch: int, name: str
) -> None:
    """Run `tick` until cancelled: at once again while it did a full `batch` of work,
    otherwise after `interval`. A failed tick (database busy or down) is logged and retried."""
    while True:
        try:
            while await tick() >= batch:
                pass  # more waiting: go on without sleeping
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: tick failed", name)
        await asyncio.sleep(interval)


async def _stop_tasks(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel the background tasks and wait for them, but not for ever: a task that does not
    stop within `TASK_STOP_SECONDS` is logged with where it hangs, and shutdown goes on."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    _, stuck = await asyncio.wait(tasks, timeout=TASK_STOP_SECONDS)
    for task in stuck:
        where = io.StringIO()
        task.print_stack(file=where)
        log.error(
            "background task %s did not stop within %s s of its cancellation:\n%s",
            task.get_name(),
            TASK_STOP_SECONDS,
            where.getvalue(),
        )


def _tune_garbage_collector() -> None:
    """Collect less often, and leave what exists once the service is up out of the walks.

    Bulk work (imports, campaign batches, event batches) makes many short-lived
    objects: at the default first threshold (700) the collector runs thousands of
    times a second there, and its older generations walk every module and model
    the process loaded (10-25 % of an import's time, measured). Once per process:
    a frozen object is never collected, so a process starting many apps (tests)
    must not freeze each one's leftovers.
    """
    if gc.get_freeze_count():
        return
    gc.set_threshold(50_000, 20, 20)
    gc.freeze()


def _report_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s died", task.get_name(), exc_info=task.exception())


def token_keys(settings: ServiceSettings, private_key: str = "") -> TokenKeys:
    return TokenKeys(
        secret=settings.jwt_secret,
        private_key=private_key,
        public_key=settings.jwt_public_key,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    )


def service_handlers(
    settings: ServiceSettings, own: Handlers | None, *, keep_directory: bool = True
) -> Handlers:
    """The service's handlers plus the directory's, as a copy (one module-level set serves many apps)."""
    handlers = Handlers(own.name if own else settings.service_name)
    handlers.by_type.update(own.by_type if own else {})
    if keep_directory:
        directory.register(handlers)
    return handlers


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    migrations: Path,
    routers: Sequence[APIRouter] = (),
    handlers: Handlers | None = None,
    keep_directory: bool = True,
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    readiness: Mapping[str, ReadinessCheck] | None = None,
    details: Mapping[str, ReadinessCheck] | None = None,
    keys: TokenKeys | None = None,
) -> FastAPI:
    """A service app: routes under /api/v1, problem JSON, health, and its lifespan.

    At start-up: migrate the database, connect to NATS, make sure the streams
    exist, start the outbox relay and the consumers, then the service's own
    hooks. At shutdown, the service's own hooks run, then everything stops in
    reverse. `readiness` adds checks to /readyz (e.g. the gateway's upstreams);
    `details` adds information to it that does not decide readiness (e.g. lag).
    """
    setup_tracing(settings.service_name, settings.otlp_endpoint)
    handlers = service_handlers(settings, handlers, keep_directory=keep_directory)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Database(settings.database_url)
        instrument_engine(db.engine)
        await migrate(db, migrations)
        bus = await Bus.connect(
            settings.nats_url,
            name=f"crm-{settings.service_name}",
            replicas=settings.nats_replicas,
            retention_days=settings.event_retention_days,
        )
        await bus.ensure_streams()
        runtime = Runtime(settings=settings, db=db, bus=bus, relay=OutboxRelay(db, bus))
        app.state.runtime = runtime
        app.state.db = db
        if settings.outbox_relay:
            runtime.spawn(runtime.relay.run(), "outbox-relay")
        if handlers.by_type:
            consumer = Consumer(db, bus, handlers, max_deliveries=settings.max_deliveries)
            await consumer.ensure()
            runtime.consumers.append(consumer)
            runtime.spawn(consumer.run(), f"consumer-{handlers.name}")
        for hook in on_startup:
            await hook(runtime)
        _tune_garbage_collector()
        log.info("%s ready on %s:%s", settings.service_name, settings.host, settings.port)
        try:
            yield
        finally:
            for hook in reversed(on_shutdown):
                try:
                    await hook(runtime)
                except Exception:
                    log.exception("shutdown hook failed")
            await _stop_tasks(runtime.tasks)
            await bus.close()
            await db.dispose()

    app = FastAPI(
        title=title,
        version="1.0.0",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.token_keys = keys or token_keys(settings)
    install_problem_handlers(app)
    for router in routers:
        app.include_router(router, prefix=API_PREFIX)
    app.include_router(health_router(readiness or {}, details or {}))
    instrument_app(app)
    app.add_middleware(RequestIdMiddleware)
    return app


def health_router(
    readiness: Mapping[str, ReadinessCheck], details: Mapping[str, ReadinessCheck] | None = None
) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Alive: the process answers (nothing else is checked: a restart would not help)."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        """Ready: the database answers, the bus is connected, and every extra check passes."""
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        checks = {"database": False, "bus": False}
        body: dict[str, Any] = {"checks": checks}
        if runtime is None:
            return JSONResponse({"status": "unavailable", **body}, status_code=503)
        try:
            async with runtime.db.session() as session:
                await session.execute(text("SELECT 1"))
            checks["database"] = True
        except Exception:
            log.warning("readiness: database check failed", exc_info=True)
        checks["bus"] = runtime.bus.nc.is_connected
        ready = all(checks.values())
        names = list(readiness)
        results = await asyncio.gather(*(readiness[name](runtime) for name in names))
        for name, parts in zip(names, results, strict=True):
            body[name] = parts
            ready = ready and all(state == "ok" for state in parts.values())
        for name, describe in (details or {}).items():
            body[name] = await describe(runtime)
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", **body},
            status_code=200 if ready else 503,
        )

    return router


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


DatabaseDep = Annotated[Database, Depends(get_db)]
