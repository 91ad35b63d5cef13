"""OpenTelemetry: tracer set-up, instrumentation, and trace context across NATS."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanProcessor
from opentelemetry.trace import SpanKind

_tracer = trace.get_tracer("crm_kernel")


def setup_tracing(service_name: str, otlp_endpoint: str = "") -> None:
    """Install the process's tracer provider once; export over OTLP when an endpoint is set.

    Without an endpoint spans are still created (so trace context flows through
    logs and messages) but not exported.
    """
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return
    provider = TracerProvider(resource=Resource.create({"service.name": f"crm-{service_name}"}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        endpoint = otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)


def add_span_processor(processor: SpanProcessor) -> None:
    """Attach a processor (tests use an in-memory exporter) to the installed provider."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.add_span_processor(processor)


def instrument_app(app: Any) -> None:
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz")


def instrument_engine(engine: Any) -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    # The instrumentation declares SQLAlchemy < 2.1 but works with 2.1's event API.
    SQLAlchemyInstrumentor().instrument(engine=engine.sync_engine, skip_dep_check=True)


def instrument_http_client() -> None:
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor

    instrumentor = AioHttpClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def trace_headers() -> dict[str, str]:
    """`traceparent` (and `tracestate`) of the current span, to store with an outgoing message."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def consumer_spans(
    messages: Sequence[tuple[Mapping[str, str] | None, str]], consumer: str
) -> Iterator[None]:
    """One `process <subject>` span per message, each continuing its publisher's trace.

    With one message the span is current (the handler's database spans nest in
    it); with a batch, each message's span covers the batch handler's work.
    """
    spans = [
        _tracer.start_span(
            f"process {subject}",
            context=propagate.extract(dict(headers or {})),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": subject,
                "messaging.consumer.group.name": consumer,
                "messaging.batch.message_count": len(messages),
            },
        )
        for headers, subject in messages
    ]
    try:
        if len(spans) == 1:
            with trace.use_span(spans[0], end_on_exit=False):
                yield
        else:
            yield
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, str(exc)))
        raise
    finally:
        for span in spans:
            span.end()
