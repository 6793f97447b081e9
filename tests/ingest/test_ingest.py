"""Ingest against Amazon DynamoDB Local: per-type outcome, exactly-once under redelivery in any
order, out-of-order arrival, malformed input, unknown accounts."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import (
    AGGREGATE_SK,
    CounterModel,
    EventModel,
    MessageEventModel,
    MessageModel,
    QuarantineModel,
    SuppressionModel,
)
from chalicelib.events.ses import parse_envelope, parse_event
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes

from tests.conftest import load_event
from tests.support import TestTenant, for_account

MESSAGE_A = "010001a19bc15a51-f7fd8b2d-fc26-45b7-90fb-8b8d91076163-000000"
MESSAGE_B = "010001a1a6ee73d8-714732c5-cc82-4a22-90a5-5ad1684fd7c8-000000"
LIFECYCLE_A = [
    "send",
    "delivery",
    "open",
    "open_second",
    "open_image_proxy",
    "click",
    "click_null_linktags",
]
EVERY_TYPE = [
    "send",
    "delivery",
    "bounce_permanent_multi",
    "complaint",
    "open",
    "click",
    "reject",
    "rendering_failure",
    "delivery_delay",
    "subscription",
]


def run(t: TestTenant, *names_or_raws: Any) -> list[Outcome]:
    raws = [
        for_account(load_event(x), t.account_id) if isinstance(x, str) else x for x in names_or_raws
    ]
    return ingest_envelopes(raws, tenants=t.directory, store=t.store).outcomes


def message(t: TestTenant, message_id: str) -> MessageModel:
    pk = keys.message_pk(t.tenant_id, message_id)
    return MessageModel.get(pk, AGGREGATE_SK, consistent_read=True)


def timeline(t: TestTenant, message_id: str) -> list[MessageEventModel]:
    pk = keys.message_pk(t.tenant_id, message_id)
    return list(MessageEventModel.query(pk, MessageEventModel.sk.startswith("E#")))


def rows(t: TestTenant, message_id: str) -> list[EventModel]:
    """The message's rows in the tenant's time-ordered view (all shards)."""
    return [
        row
        for shard in range(t.ref.write_shards)
        for row in EventModel.query(keys.events_pk(t.tenant_id, shard))
        if row.message_id == message_id
    ]


def counters(t: TestTenant) -> dict[str, int]:
    totals: dict[str, int] = {}
    for shard in range(t.ref.write_shards):
        for item in CounterModel.query(keys.counter_pk(t.tenant_id, shard)):
            for name, value in item.attribute_values.items():
                if name.isupper():
                    totals[name] = totals.get(name, 0) + int(value)
    return totals


def suppressed(t: TestTenant) -> dict[str, SuppressionModel]:
    return {s.address: s for s in SuppressionModel.query(keys.tenant_pk(t.tenant_id))}


def snapshot(t: TestTenant, message_ids: list[str]) -> dict[str, Any]:
    """Everything ingest wrote for the tenant, without volatile fields."""
    out: dict[str, Any] = {"counters": counters(t)}
    for mid in message_ids:
        m = message(t, mid)
        out[mid] = {
            "status": m.status,
            "events": m.events,
            "opens": m.opens,
            "clicks": m.clicks,
            "body": json.dumps(m.body, sort_keys=True),
            "timeline": sorted(e.sk for e in timeline(t, mid)),
            "rows": sorted(r.sk for r in rows(t, mid)),
        }
    out["suppressed"] = sorted(suppressed(t))
    return out


@pytest.mark.parametrize("name", EVERY_TYPE)
def test_each_event_type_is_stored_with_its_status(tenant: TestTenant, name: str) -> None:
    assert run(tenant, name) == [Outcome.STORED]
    event = parse_event(parse_envelope(load_event(name)))
    entries = timeline(tenant, event.mail.message_id)
    assert [e.event_type for e in entries] == [event.event_type.value]
    from chalicelib.history.timeline import message_detail  # the status the timeline shows

    shown = message_detail(tenant.tenant_id, event.mail.message_id)["events"]
    assert [e["status"] for e in shown] == [event.status.value]
    view = rows(tenant, event.mail.message_id)
    assert {r.status for r in view} == {event.status.value}
    assert len(view) == max(1, len(event.recipients))
    recipients: set[str | None] = set(event.recipients) or {None}  # an event without recipients
    assert {r.address() for r in view} == recipients
    assert counters(tenant)[event.status.value] == len(view)
    assert message(tenant, event.mail.message_id).events == 1


def test_message_lifecycle_aggregate(tenant: TestTenant) -> None:
    assert run(tenant, *LIFECYCLE_A) == [Outcome.STORED] * len(LIFECYCLE_A)
    m = message(tenant, MESSAGE_A)
    assert m.status == "CLICKED"
    assert (m.opens, m.clicks, m.events) == (3, 2, 7)
    alice = m.body["recipients"]["alice@example.com"]
    assert alice["opens"] == 3 and alice["clicks"] == 2
    assert alice["first_open_at"] < alice["last_open_at"]
    assert sum(m.body["links"].values()) == 2 and len(m.body["links"]) == 2
    assert timeline(tenant, MESSAGE_A)[0].event_type == "Send"


def test_triple_shuffled_redelivery_leaves_the_state_of_one(settings: Any) -> None:
    from tests.support import make_tenant

    once, thrice = make_tenant(settings), make_tenant(settings)
    names = [*LIFECYCLE_A, "send_multi", "bounce_permanent_multi", "delivery_multi", "complaint"]
    run(once, *names)
    redelivered = [for_account(load_event(n), thrice.account_id) for n in names * 3]
    random.Random(7).shuffle(redelivered)
    outcomes = run(thrice, *redelivered)
    assert outcomes.count(Outcome.STORED) == len(names)
    assert outcomes.count(Outcome.DUPLICATE) == 2 * len(names)
    ids = [MESSAGE_A, MESSAGE_B]
    assert snapshot(thrice, ids) == snapshot(once, ids)


def test_delivery_arriving_after_open_keeps_opened(tenant: TestTenant) -> None:
    run(tenant, "open", "send", "delivery")
    assert message(tenant, MESSAGE_A).status == "OPENED"


def test_permanent_bounce_suppresses_exactly_the_bounced_addresses(tenant: TestTenant) -> None:
    run(tenant, "send_multi", "bounce_permanent_multi")
    entries = suppressed(tenant)
    assert sorted(entries) == ["bob@example.com", "carol@example.com"]
    bob = entries["bob@example.com"]
    assert (bob.reason, bob.bounce_type, bob.bounce_subtype) == ("BOUNCE", "Permanent", "General")
    assert bob.diagnostic_code == "smtp; 550 5.1.1 user unknown"
    assert bob.source_message_id == MESSAGE_B
    assert bob.event_at.startswith("2026-11-04T14:20:09")


def test_transient_and_undetermined_bounces_suppress_nobody(tenant: TestTenant) -> None:
    assert run(tenant, "bounce_transient_5xx", "bounce_undetermined") == [Outcome.STORED] * 2
    assert suppressed(tenant) == {}
    assert counters(tenant)["BOUNCED"] == 2
    assert "BOUNCED_PERMANENT" not in counters(tenant)


def test_complaint_suppresses_the_complainant_with_feedback_type(tenant: TestTenant) -> None:
    run(tenant, "complaint", "complaint_no_feedback_type")
    entries = suppressed(tenant)
    assert len(entries) == 2
    frank = entries["frank@example.com"]
    assert (frank.reason, frank.feedback_type) == ("COMPLAINT", "abuse")
    other = next(e for a, e in entries.items() if a != "frank@example.com")
    assert other.reason == "COMPLAINT" and other.feedback_type is None


def test_second_suppressing_event_counts_but_keeps_the_first_description(
    tenant: TestTenant,
) -> None:
    bounce = load_event("bounce_permanent_multi")
    later = for_account(bounce, tenant.account_id)
    later["detail"]["bounce"]["feedbackId"] = "another-feedback"
    later["detail"]["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "smtp; 550 later"
    run(tenant, "bounce_permanent_multi", later)
    bob = suppressed(tenant)["bob@example.com"]
    assert bob.occurrences == 2
    assert bob.diagnostic_code == "smtp; 550 5.1.1 user unknown"


def test_other_detail_types_are_ignored_and_store_nothing(tenant: TestTenant) -> None:
    assert run(tenant, "other_detail_type_advisor", "other_detail_type_sending_status") == [
        Outcome.IGNORED,
        Outcome.IGNORED,
    ]
    assert counters(tenant) == {}


def test_unknown_account_stores_nothing_and_is_logged(tenant: TestTenant, capsys: Any) -> None:
    raw = load_event("unknown_account")
    capsys.readouterr()
    report = ingest_envelopes([raw], tenants=tenant.directory, store=tenant.store)
    assert report.outcomes == [Outcome.UNKNOWN_ACCOUNT]
    printed = capsys.readouterr().out.splitlines()
    lines = [json.loads(line) for line in printed if "UnknownAccountEvents" in line]
    assert lines and lines[0]["account"] == "999988887777" and lines[0]["UnknownAccountEvents"] == 1
    event = parse_event(parse_envelope(raw))
    assert MessageModel.count(keys.message_pk(tenant.tenant_id, event.mail.message_id)) == 0
    assert counters(tenant) == {}


def test_tenant_is_decided_by_envelope_account_only(settings: Any) -> None:
    """The record's own sendingAccountId / sourceArn name another tenant: ignored."""
    from tests.support import make_tenant

    owner, other = make_tenant(settings), make_tenant(settings)
    raw = for_account(load_event("send"), owner.account_id)
    raw["detail"]["mail"]["sendingAccountId"] = other.account_id
    raw["detail"]["mail"]["sourceArn"] = f"arn:aws:ses:us-east-1:{other.account_id}:identity/x"
    run(owner, raw)
    assert message(owner, MESSAGE_A).events == 1
    assert MessageModel.count(keys.message_pk(other.tenant_id, MESSAGE_A)) == 0


MALFORMED = [
    "missing_mail",
    "unknown_event_type",
    "mismatched_detail_type",
    "detail_not_object",
    "bounce_missing_type",
    "bad_timestamp",
]


@pytest.mark.parametrize("name", MALFORMED)
def test_malformed_event_is_quarantined_raw_and_writes_nothing_else(
    tenant: TestTenant, name: str
) -> None:
    raw = for_account(load_event(f"malformed/{name}"), tenant.account_id)
    outcomes = run(tenant, raw)
    if name == "unknown_event_type" and raw["detail-type"] not in (
        "Email Sent",
        "Email Delivered",
        "Email Bounced",
    ):
        # An unknown detail-type is not an SES event record at all: ignored, like advisor events.
        assert outcomes == [Outcome.IGNORED]
        return
    assert outcomes == [Outcome.QUARANTINED]
    held = [q for q in QuarantineModel.scan() if q.envelope_id == raw["id"]]
    assert len(held) == 1
    assert json.loads(held[0].raw) == raw
    assert held[0].tenant_id == tenant.tenant_id and held[0].reason
    assert counters(tenant) == {}


def test_quarantine_keeps_unreadable_envelopes_and_bounds_size(tenant: TestTenant) -> None:
    huge = for_account(load_event("send"), tenant.account_id)
    del huge["account"]
    huge["padding"] = "x" * 350_000
    assert run(tenant, huge) == [Outcome.QUARANTINED]
    held = [q for q in QuarantineModel.scan() if q.raw_bytes > 350_000]
    assert held and held[0].truncated and len(held[0].raw) <= 300_000
    assert "account is missing" in held[0].reason


def test_oversized_field_is_quarantined(tenant: TestTenant) -> None:
    raw = for_account(load_event("click"), tenant.account_id)
    raw["detail"]["click"]["link"] = "https://example.com/" + "a" * 10_000
    assert run(tenant, raw) == [Outcome.QUARANTINED]
    assert counters(tenant) == {}


def test_events_carry_ttl_from_retention(tenant: TestTenant, settings: Any) -> None:
    run(tenant, "delivery")
    row = rows(tenant, MESSAGE_A)[0]
    assert timeline(tenant, MESSAGE_A)[0].expires_at == row.expires_at
    event_time = parse_event(parse_envelope(load_event("delivery"))).timestamp
    # TTL is stored in whole seconds.
    assert abs((row.expires_at - event_time).total_seconds() - settings.retention_seconds) < 1
    assert message(tenant, MESSAGE_A).expires_at is not None


def test_rows_keep_what_their_keys_do_not_say(tenant: TestTenant) -> None:
    """A row's event key, time and type are its sort key's and its status's, its recipient the
    recipient_pk's (ingest keeps recipients as their canonical keys, invariant 12): none of them
    is stored again."""
    raw = for_account(load_event("delivery"), tenant.account_id)
    raw["detail"]["delivery"]["recipients"] = ["Alice@Example.COM"]
    assert run(tenant, raw, "send") == [Outcome.STORED, Outcome.STORED]
    event = parse_event(parse_envelope(raw))
    by_type = {r.kind(): r for r in rows(tenant, event.mail.message_id)}
    assert set(by_type) == {"Send", "Delivery"}
    delivery = by_type["Delivery"]
    assert delivery.address() == "alice@example.com"
    assert delivery.recipient_pk == keys.recipient_pk(tenant.tenant_id, "alice@example.com")
    assert (delivery.key(), delivery.at()) == (event.key, keys.iso_ms(event.timestamp))
    for row in by_type.values():
        stored = set(row.serialize())
        assert not stored & {"event_key", "event_type", "occurred_at", "recipient"}, stored


def test_most_entries_carry_their_counter_changes_in_a_byte(tenant: TestTenant) -> None:
    """An event whose only counter change is its own status in its own hour says so with a
    number; the stream still counts it (the status and the hour are the entry's)."""
    assert run(tenant, "send", "delivery") == [Outcome.STORED, Outcome.STORED]
    entries = timeline(tenant, MESSAGE_A)
    assert [e.counted for e in entries] == ["1", "1"]
    totals = counters(tenant)
    assert (totals["SENT"], totals["DELIVERED"]) == (1, 1)
