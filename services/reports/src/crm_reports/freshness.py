"""Freshness: the lag between an event's time and its effect on the read models.

Recorded as the OpenTelemetry histogram `crm.reports.freshness.lag` (seconds,
per event type; exported over OTLP to `OTEL_EXPORTER_OTLP_ENDPOINT`, like the
kernel's traces) and kept per replica for `/readyz`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from crm_kernel.app import Runtime
from crm_kernel.events import Envelope

_meter = metrics.get_meter("crm_reports")
_lag = _meter.create_histogram(
    "crm.reports.freshness.lag",
    unit="s",
    description="Time from an event's occurrence to its effect on the reports read models",
)
_last: dict[str, float] = {}


def setup_metrics(service_name: str, otlp_endpoint: str = "") -> None:
    """Install the process's meter provider once; export over OTLP when an endpoint is set."""
    if isinstance(metrics.get_meter_provider(), MeterProvider) or not otlp_endpoint:
        return
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    endpoint = otlp_endpoint.rstrip("/")
    if not endpoint.endswith("/v1/metrics"):
        endpoint += "/v1/metrics"
    reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint))
    resource = Resource.create({"service.name": f"crm-{service_name}"})
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))


def observe(envelopes: Sequence[Envelope]) -> None:
    """Record the lag of each applied event (its envelope time to now)."""
    now = datetime.now(UTC)
    for envelope in envelopes:
        lag = max((now - envelope.time).total_seconds(), 0.0)
        _lag.record(lag, {"event.type": envelope.type})
        _last["lag_seconds"] = lag
        _last["applied_at"] = time.time()


def snapshot() -> dict[str, str]:
    """The last applied event's lag and how long ago it was applied, for `/readyz`."""
    if not _last:
        return {"last_event_lag_seconds": "none yet"}
    return {
        "last_event_lag_seconds": f"{_last['lag_seconds']:.3f}",
        "last_applied_seconds_ago": f"{time.time() - _last['applied_at']:.1f}",
    }


async def details(runtime: Runtime) -> dict[str, str]:
    return snapshot()
