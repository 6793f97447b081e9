"""SES list-management events (`Subscription`, tests/events/subscription.json): an unsubscribe
from everything puts the address on SESami's list (UNSUBSCRIBED, exactly once, in the ingest
transaction); a topic-level opt-out is recorded and suppresses nobody; a message known only from
a Subscription event shows SUBSCRIPTION, not SENT. Ingest against DynamoDB Local."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import AGGREGATE_SK, MessageEventModel, MessageModel, SuppressionModel
from chalicelib.events.ses import parse_envelope, parse_event
from chalicelib.events.state import apply
from chalicelib.events.status import Status
from chalicelib.history import reports
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from chalicelib.suppression.store import SuppressionService

from tests.conftest import load_event
from tests.support import TestTenant, for_account

MESSAGE = "010001a19bc15e7e-44942386-00e8-477f-83d4-ccc545d493dd-000000"


def run(t: TestTenant, *raws: dict[str, Any]) -> list[Outcome]:
    envelopes = [for_account(r, t.account_id) for r in raws]
    return ingest_envelopes(envelopes, tenants=t.directory, store=t.store).outcomes


def subscription(**preferences: Any) -> dict[str, Any]:
    event = copy.deepcopy(load_event("subscription"))
    event["detail"]["subscription"]["newTopicPreferences"].update(preferences)
    return event


def send_of_the_same_message() -> dict[str, Any]:
    event = copy.deepcopy(load_event("subscription"))
    event["detail-type"] = "Email Sent"
    event["detail"]["eventType"] = "Send"
    del event["detail"]["subscription"]
    return event


def entries(t: TestTenant) -> dict[str, SuppressionModel]:
    return {s.address: s for s in SuppressionModel.query(keys.tenant_pk(t.tenant_id))}


def aggregate(t: TestTenant) -> MessageModel:
    return MessageModel.get(keys.message_pk(t.tenant_id, MESSAGE), AGGREGATE_SK)


def test_unsubscribe_all_suppresses_the_recipient_exactly_once(tenant: TestTenant) -> None:
    recorded = load_event("subscription")
    assert run(tenant, recorded) == [Outcome.STORED]
    assert run(tenant, recorded, recorded) == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    [entry] = entries(tenant).values()
    assert entry.address == "henry@example.com"
    assert (entry.reason, entry.reasons, entry.occurrences) == (
        "UNSUBSCRIBED",
        {"UNSUBSCRIBED"},
        1,
    )
    assert (entry.created_by, entry.source_message_id) == ("ses-event", MESSAGE)
    assert entry.event_at == "2026-11-02T19:21:40.118Z"


def test_the_entry_says_where_the_unsubscribe_came_from(
    tenant: TestTenant, app_settings: Any
) -> None:
    from chalicelib.core import wiring

    run(tenant, load_event("subscription"))
    view = SuppressionService(wiring.signer()).get(tenant.tenant_id, "Henry@Example.com")
    assert view["reason"] == "UNSUBSCRIBED" and view["suppressed"] is True
    [origin] = view["history"]
    assert "SES list management" in origin["why"] and MESSAGE in origin["why"]


def test_a_topic_opt_out_is_recorded_and_suppresses_nobody(tenant: TestTenant) -> None:
    assert run(tenant, subscription(unsubscribeAll=False)) == [Outcome.STORED]
    assert entries(tenant) == {}
    pk = keys.message_pk(tenant.tenant_id, MESSAGE)
    [entry] = MessageEventModel.query(pk, MessageEventModel.sk.startswith("E#"))
    assert entry.event_type == "Subscription"
    assert entry.detail == {
        "contact_list": "newsletter",
        "unsubscribed_all": False,
        "topics": {"weekly": "OptOut"},
    }


def test_an_unsubscribe_from_a_message_with_several_recipients_suppresses_nobody(
    tenant: TestTenant,
) -> None:
    """SES does not say which recipient unsubscribed: nobody is suppressed, rather than all."""
    event = load_event("subscription")
    event["detail"]["mail"]["destination"] = ["henry@example.com", "ida@example.com"]
    assert run(tenant, event) == [Outcome.STORED]
    assert entries(tenant) == {}


def test_a_message_known_only_from_a_subscription_is_not_shown_as_sent(
    tenant: TestTenant,
) -> None:
    run(tenant, load_event("subscription"))
    agg = aggregate(tenant)
    assert agg.status == "SUBSCRIPTION"
    # (The aggregate stores a recipient's status only where it is not the message's.)
    henry = reports.message_detail(tenant.tenant_id, MESSAGE)["recipients"]["henry@example.com"]
    assert henry["status"] == "SUBSCRIPTION" and henry["unsubscribed"] is True
    assert reports.message_detail(tenant.tenant_id, MESSAGE)["status"] == "SUBSCRIPTION"


@pytest.mark.parametrize("send_first", [True, False])
def test_a_send_event_in_either_order_makes_it_sent(tenant: TestTenant, send_first: bool) -> None:
    events = [send_of_the_same_message(), load_event("subscription")]
    run(tenant, *(events if send_first else events[::-1]))
    agg = aggregate(tenant)
    assert (agg.status, agg.events) == ("SENT", 2)
    henry = reports.message_detail(tenant.tenant_id, MESSAGE)["recipients"]["henry@example.com"]
    assert henry["status"] == "SENT" and henry["unsubscribed"] is True
    assert sorted(entries(tenant)) == ["henry@example.com"]


def test_the_fold_starts_from_the_first_events_own_status() -> None:
    sub = parse_event(parse_envelope(load_event("subscription")))
    send = parse_event(parse_envelope(send_of_the_same_message()))
    assert apply(None, sub).status is Status.SUBSCRIPTION
    assert apply(apply(None, sub), send).status is Status.SENT
    assert apply(apply(None, send), sub).status is Status.SENT
    bounce = parse_event(parse_envelope(load_event("bounce_transient_5xx")))
    first = apply(None, bounce)
    [state] = first.recipients.values()
    assert (state.status, state.bounce_type) == (Status.BOUNCED, "Transient")
