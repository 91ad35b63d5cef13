"""Serving a service: uvicorn with uvloop and httptools (measured ~2x the pure-Python defaults)."""

from __future__ import annotations

import logging

import uvicorn

from crm_kernel.settings import ServiceSettings


def configure_logging(settings: ServiceSettings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s {settings.service_name} %(levelname)s %(name)s: %(message)s",
    )


def serve(app_factory: str, settings: ServiceSettings) -> None:
    """Run `module:factory` on the service's host and port until SIGTERM/SIGINT."""
    configure_logging(settings)
    uvicorn.run(
        app_factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        workers=settings.workers if settings.workers > 1 else None,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
        # With WORKERS > 1 the supervisor replaces a worker that misses a health ping;
        # a worker importing and migrating on a loaded machine can take longer than the
        # default 5 s to answer its first one.
        timeout_worker_healthcheck=30,
    )
