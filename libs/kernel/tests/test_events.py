"""The event envelope: CloudEvents 1.0 on the wire, tolerant of newer producers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from crm_kernel.events import Envelope, IntegrationEvent


class DealWonV1(IntegrationEvent):
    type = "crm.deals.deal.won"

    deal_id: str
    amount: str


class DealWonV2(DealWonV1):
    schema_version = 2

    currency: str


def test_envelope_bytes_carry_cloudevents_fields_actor_and_dataversion() -> None:
    envelope = DealWonV2(deal_id="d1", amount="10.50", currency="EUR").envelope(
        subject="d1", actor="user-7"
    )
    wire = orjson.loads(envelope.to_bytes())

    assert wire["specversion"] == "1.0"
    assert wire["id"] == envelope.id and str(envelope.event_uuid) == envelope.id
    assert wire["type"] == "crm.deals.deal.won"
    assert wire["source"] == "/deals"
    assert wire["subject"] == "d1"
    assert wire["datacontenttype"] == "application/json"
    assert wire["actor"] == "user-7"
    assert wire["dataversion"] == 2
    assert wire["data"] == {"deal_id": "d1", "amount": "10.50", "currency": "EUR"}
    sent_at = datetime.fromisoformat(wire["time"])
    assert sent_at.utcoffset() == timedelta(0)
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 5


def test_envelope_round_trips_through_bytes() -> None:
    envelope = DealWonV1(deal_id="d1", amount="3").envelope(actor="u")
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert again.time.tzinfo is not None
    assert again.event(DealWonV1) == DealWonV1(deal_id="d1", amount="3")


def test_envelope_without_subject_or_actor_omits_them_on_the_wire() -> None:
    wire = orjson.loads(DealWonV1(deal_id="d1", amount="3").envelope().to_bytes())
    assert "subject" not in wire and "actor" not in wire


def test_each_envelope_gets_a_new_time_ordered_id() -> None:
    first = DealWonV1(deal_id="d1", amount="3").envelope()
    second = DealWonV1(deal_id="d1", amount="3").envelope()
    assert first.id != second.id
    assert first.event_uuid.version == 7 and first.id < second.id


def test_older_schema_keeps_fields_a_newer_producer_added() -> None:
    newer = DealWonV2(deal_id="d1", amount="10", currency="EUR").envelope()
    read = Envelope.from_bytes(newer.to_bytes()).event(DealWonV1)

    assert isinstance(read, DealWonV1)
    assert read.deal_id == "d1"
    assert read.model_extra == {"currency": "EUR"}
    # Passing the event on does not lose what this consumer does not know.
    assert read.model_dump(mode="json")["currency"] == "EUR"


def test_bulk_emails_fill_few_commands_each_within_the_nats_payload_limit() -> None:
    from crm_kernel.contracts.notifications import (
        MAX_BULK_EMAILS_BYTES,
        BulkEmail,
        bulk_email_commands,
    )

    # ~10 KB each in Cyrillic (2 bytes a letter) and HTML quotes (escaped in JSON).
    body = 'Привет, <a href="https://shop.example/x">читатель</a>. ' * 180
    emails = [
        BulkEmail(key=f"c:{i}", to=f"r{i}@example.org", subject="Новости", body_text=body)
        for i in range(300)
    ]
    commands = bulk_email_commands(emails, source_type="campaign", source_id="c")
    assert [e.key for c in commands for e in c.emails] == [e.key for e in emails]
    assert len(commands) < len(emails) / 10
    for command in commands:
        assert command.source_id == "c"
        # The whole envelope on the wire, under NATS's default 1 MiB max_payload.
        assert len(command.envelope().to_bytes()) < 1024 * 1024
        assert len(command.model_dump_json()) <= MAX_BULK_EMAILS_BYTES + 1024
