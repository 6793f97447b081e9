"""Ingest is unaffected by webhooks: with every endpoint of a tenant failing, ingest's outcomes
and its DynamoDB write cost are exactly those of a tenant without endpoints; the enqueue writes
nothing to DynamoDB, and a tenant without endpoints queues nothing but the alerts' cue. If the
queue itself is down, the event is stored first and the failure makes the invocation retry."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from chalicelib.ingest.pipeline import ingest_envelopes
from chalicelib.webhooks.queue import MemoryQueue, QueueUnavailable

from bench.ingest_bench import CapacityMeter
from devstack.traffic import traffic
from tests.fakes import FakeEpochClock
from tests.support import make_tenant
from tests.webhooks.support import hooks_for

pytestmark = pytest.mark.ddb_local


def _run(
    tenant: Any, notify: Any, envelopes: list[dict[str, Any]]
) -> tuple[dict[str, int], float, int]:
    with CapacityMeter() as meter:
        report = ingest_envelopes(
            envelopes, tenants=tenant.directory, store=tenant.store, notify=notify
        )
    return report.counts(), meter.billed_write, int(meter.units["write"] * 1000)


def test_with_every_endpoint_failing_ingest_outcomes_and_writes_are_unchanged(
    app_settings: Any,
) -> None:
    plain, hooked = make_tenant(app_settings), make_tenant(app_settings)
    hooks = hooks_for(hooked.tenant_id)
    for port in (9, 1):  # nothing listens there: every attempt fails
        hooks.endpoint(f"http://127.0.0.1:{port}/hooks")
    mix_a = list(traffic(plain.account_id, 40, seed=11))
    mix_b = list(traffic(hooked.account_id, 40, seed=11))  # the same events, the other account

    quiet = MemoryQueue(FakeEpochClock.starting_now())
    without = hooks_for(plain.tenant_id, queue=quiet).notifier.recorded
    counts_a, billed_a, local_a = _run(plain, without, mix_a)
    counts_b, billed_b, local_b = _run(hooked, hooks.notifier.recorded, mix_b)
    assert counts_a == counts_b and counts_a.get("stored") == len(mix_a)
    assert billed_a == billed_b and local_a == local_b

    deliveries = [t for t in hooks.h.queue.sent if t.body["k"] == "deliver"]
    assert len(deliveries) >= 2 * len(mix_b)  # every event, to both endpoints
    assert [t.body["k"] for t in quiet.sent] == ["evaluate"]  # no endpoints: only the cue
    # Delivering (all failing) writes to the webhooks table only, never to ingest's tables.
    with CapacityMeter() as meter:
        for task in [t for t in hooks.h.queue.due() if t.body["k"] == "deliver"][:20]:
            assert hooks.h.worker.handle(task.body) == "failed"
    touched = {k.split(":", 1)[1] for k in meter.by_table if k.startswith("write:")}
    assert touched <= {"webhooks"}, touched


def test_a_queue_failure_never_loses_the_event_and_the_retry_queues_it(app_settings: Any) -> None:
    tenant = make_tenant(app_settings)
    hooks = hooks_for(tenant.tenant_id)
    hooks.endpoint("http://127.0.0.1:9/hooks")
    envelope = next(iter(traffic(tenant.account_id, 1, seed=2)))

    class Down:
        def send(self, tasks: Any) -> None:
            raise QueueUnavailable("SQS is down")

    from chalicelib.webhooks.enqueue import Notifier

    broken = Notifier(hooks.notifier.routes, Down())
    with pytest.raises(QueueUnavailable):
        ingest_envelopes(
            [envelope], tenants=tenant.directory, store=tenant.store, notify=broken.recorded
        )
    # Stored regardless; Lambda's retry is a duplicate, and it queues the webhook then.
    again = hooks.ingest(tenant, envelope)
    assert again.counts() == {"duplicate": 1}
    assert [t.body["k"] for t in hooks.h.queue.sent][:1] == ["deliver"]


ENGAGEMENT = [
    f"engagement/{name}"
    for name in (
        "send",
        "delivery",
        "open_gateway_prefetch",  # 0.6 s after delivery, a browser's user agent
        "click_gateway_1",  # three links, 0.8-0.88 s after delivery
        "click_gateway_2",
        "click_gateway_3",
        "open_apple_mpp",
        "open_yahoo_proxy",
        "click_barracuda",
        "click_person_hour_later",
    )
]


def _payloads(queue: Any) -> list[dict[str, Any]]:
    import json

    bodies = [json.loads(t.body["b"]) for t in queue.sent if t.body["k"] == "deliver"]
    return [b for b in bodies if b["type"] in ("email.opened", "email.clicked")]


def test_open_and_click_payloads_carry_the_class_ingest_gave_them_as_their_rows(
    app_settings: Any,
) -> None:
    from chalicelib.core import keys
    from chalicelib.core.tables import EventModel

    from tests.conftest import load_event
    from tests.support import for_account

    tenant = make_tenant(app_settings)
    hooks = hooks_for(tenant.tenant_id)
    hooks.endpoint("http://127.0.0.1:9/hooks", event_types=["email.opened", "email.clicked"])
    envelopes = [for_account(load_event(n), tenant.account_id) for n in ENGAGEMENT]
    assert hooks.ingest(tenant, *envelopes).counts() == {"stored": len(envelopes)}

    sent = _payloads(hooks.h.queue)
    assert len(sent) == 8
    got = sorted(
        (
            p["data"]["detail"].get("user_agent", "")[:24],
            p["data"]["engagement"],
            p["data"]["detail"]["engagement_reason"],
        )
        for p in sent
    )
    classes = Counter((p["type"], p["data"]["engagement"]) for p in sent)
    assert classes == {
        ("email.opened", "scanner"): 1,  # the gateway's prefetch, at delivery
        ("email.opened", "apple_privacy"): 1,
        ("email.opened", "image_proxy"): 1,
        ("email.clicked", "scanner"): 4,  # the gateway's three links, Barracuda's
        ("email.clicked", "human"): 1,  # the person, an hour later
    }, got
    reasons = {p["data"]["detail"]["engagement_reason"] for p in sent}
    assert {"timing:near_delivery", "ua:automation", "ua:client"} <= reasons
    # The same class and reason as the event's row in GET /events.
    rows = {
        (r.key(), r.engagement, (r.detail or {}).get("engagement_reason"))
        for r in EventModel.query(keys.events_pk(tenant.tenant_id, 0))
        if r.engagement
    }
    assert {
        (
            p["data"]["id"].rsplit(":", 1)[0],
            p["data"]["engagement"],
            p["data"]["detail"]["engagement_reason"],
        )
        for p in sent
    } == rows


def test_a_redelivered_click_queues_the_class_its_message_gives_it_now(app_settings: Any) -> None:
    from tests.conftest import load_event
    from tests.support import for_account

    tenant = make_tenant(app_settings)
    hooks = hooks_for(tenant.tenant_id)
    hooks.endpoint("http://127.0.0.1:9/hooks", event_types=["email.clicked"])
    send, delivery, click = (
        for_account(load_event(f"engagement/{n}"), tenant.account_id)
        for n in ("send", "delivery", "click_gateway_1")
    )
    # The click (5.3 s after the send) arrives before the Delivery (4.5 s after the send): on
    # arrival, a browser's click 5.3 s after the send is a person's.
    hooks.ingest(tenant, send, click)
    (first,) = _payloads(hooks.h.queue)
    assert (first["data"]["engagement"], first["data"]["detail"]["engagement_reason"]) == (
        "human",
        "ua:client",
    )
    # The Delivery re-derives it: 0.8 s after delivery, a scanner's. Lambda's retry of the click
    # (a duplicate, after a failed enqueue) queues the verdict the message gives it now.
    hooks.ingest(tenant, delivery)
    assert hooks.ingest(tenant, click).counts() == {"duplicate": 1}
    (_, again) = _payloads(hooks.h.queue)
    assert (again["data"]["engagement"], again["data"]["detail"]["engagement_reason"]) == (
        "scanner",
        "timing:near_delivery",
    )
    assert again["data"]["id"] == first["data"]["id"]  # the same webhook: one message
