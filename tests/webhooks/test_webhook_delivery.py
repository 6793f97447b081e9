"""Webhook delivery: signed as Standard Webhooks (verified here with the `standardwebhooks`
library, as a receiver would), retried with computed backoff (the clock jumps, nothing sleeps),
dead-lettered after 24 hours, endpoints disabled on 410 or a day of failures with the admins
told, secrets rotated with an overlap, deliveries replayed. DynamoDB Local, a real HTTP receiver
on loopback (the local stack's loopback setting)."""

from __future__ import annotations

import itertools
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.webhooks.delivery import RETRY_FOR_SECONDS, backoff
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import load_event
from tests.support import for_account
from tests.webhooks.support import Hooks, body_of, hooks_for, receiver

pytestmark = pytest.mark.ddb_local


@pytest.fixture
def hooks(app_settings: Any, tenant: Any) -> Hooks:
    return hooks_for(tenant.tenant_id)


def _signed_by(secret: str, request: Any) -> bool:
    at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(request.headers["webhook-id"], at, request.body.decode())
    return expected in request.headers["webhook-signature"].split(" ")


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _bounce(tenant: Any) -> dict[str, Any]:
    return for_account(load_event("bounce_permanent_multi"), tenant.account_id)


def test_a_bounce_reaches_the_receiver_signed_and_verifiable(hooks: Hooks, tenant: Any) -> None:
    with receiver() as hook:
        created = hooks.endpoint(hook.url)
        hooks.ingest(tenant, _bounce(tenant))
        hooks.h.run()
    secret = created["secret"]
    assert secret.startswith("whsec_")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for request in hook.requests:
        payload = Webhook(secret).verify(request.body, request.headers)  # raises if unsigned
        by_type.setdefault(payload["type"], []).append(payload["data"])
    event = load_event("bounce_permanent_multi")["detail"]
    bounced = sorted(b["emailAddress"] for b in event["bounce"]["bouncedRecipients"])
    assert sorted(d["recipient"] for d in by_type["email.bounced"]) == bounced
    assert sorted(d["address"] for d in by_type["suppression.added"]) == bounced
    one = by_type["email.bounced"][0]
    assert one["message_id"] == event["mail"]["messageId"]
    assert one["status"] == "BOUNCED" and one["event_type"] == "Bounce"
    assert one["detail"]["bounce_type"] == "Permanent"
    assert one["id"].endswith((":00", ":01", ":02"))
    assert all(not name.startswith(("ses:", "sesami-")) for name in one["tags"])

    request = hook.requests[0]
    tampered = request.body.replace(b"Permanent", b"Transient")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)
    old = datetime.now(UTC) - timedelta(minutes=10)
    headers = {
        **request.headers,
        "webhook-timestamp": str(int(old.timestamp())),
        "webhook-signature": Webhook(secret).sign(
            request.headers["webhook-id"], old, request.body.decode()
        ),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(request.body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "A" * 43).verify(request.body, request.headers)


def test_500_three_times_then_200_is_delivered_once_more_with_the_same_id(
    hooks: Hooks, tenant: Any
) -> None:
    with receiver([(500, "down")] * 3 + [(200, "ok")]) as hook:
        endpoint = hooks.endpoint(hook.url, event_types=["email.delivered"])
        hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
        began = hooks.h.clock()
        hooks.h.run()
    assert len(hook.requests) == 4
    assert len({r.headers["webhook-id"] for r in hook.requests}) == 1
    stamps = [int(r.headers["webhook-timestamp"]) for r in hook.requests]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # signed afresh each attempt
    [entry] = hooks.log(endpoint["id"])
    assert entry["status"] == "delivered" and entry["attempts"] == 4
    record = hooks.service.delivery(tenant.tenant_id, endpoint["id"], entry["id"])
    assert [a["code"] for a in record["log"]] == [500, 500, 500, 200]
    assert record["log"][0]["body"] == "down"
    times = [_at(a["at"]) for a in record["log"]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    expected = [backoff(n, lambda: 0.5) for n in (1, 2, 3)]  # 22.5 s, 45 s, 90 s
    assert gaps == pytest.approx(expected, abs=1.0)
    assert times[0] == pytest.approx(began, abs=1.0)  # the first attempt at once


def test_a_receiver_failing_for_a_day_ends_in_a_dead_letter_and_a_disabled_endpoint(
    hooks: Hooks, tenant: Any
) -> None:
    with receiver([(503, "unavailable")]) as hook:
        endpoint = hooks.endpoint(hook.url, event_types=["email.delivered"])
        hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
        hooks.h.run(max_rounds=2_000)
    [entry] = hooks.log(endpoint["id"])
    assert entry["status"] == "failed"
    record = hooks.service.delivery(tenant.tenant_id, endpoint["id"], entry["id"])
    first = datetime.fromisoformat(record["first_attempt_at"].replace("Z", "+00:00"))
    last = datetime.fromisoformat(record["finished_at"].replace("Z", "+00:00"))
    assert (last - first).total_seconds() >= RETRY_FOR_SECONDS  # retried for at least 24 h
    assert len(hook.requests) == entry["attempts"] >= 10
    state = hooks.service.get(tenant.tenant_id, endpoint["id"])
    assert state["enabled"] is False and "24 hours" in state["disabled_reason"]
    assert len(hooks.h.told) == 1 and endpoint["id"] in hooks.h.told[0][2]
    # Disabled: nothing more is sent to it.
    hooks.ingest(tenant, for_account(load_event("delivery_multi"), tenant.account_id))
    assert hooks.h.queue.pending == []


def test_410_disables_the_endpoint_at_once_and_tells_the_admins(hooks: Hooks, tenant: Any) -> None:
    with receiver([(410, "gone")]) as hook:
        endpoint = hooks.endpoint(hook.url)
        hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
        hooks.h.run()
    assert len(hook.requests) == 1
    assert [e["status"] for e in hooks.log(endpoint["id"])] == ["failed"]
    state = hooks.service.get(tenant.tenant_id, endpoint["id"])
    assert state["enabled"] is False and "410" in state["disabled_reason"]
    assert len(hooks.h.told) == 1
    # Enabled again by hand: a fresh start, and it is delivered to again.
    again = hooks.service.update(tenant.tenant_id, endpoint["id"], {"enabled": True}, "t")
    assert again["enabled"] is True and again["disabled_reason"] is None


def test_a_redirect_is_a_failed_attempt_and_is_not_followed(hooks: Hooks, tenant: Any) -> None:
    with receiver([(200, "inside")]) as inner, receiver([(307, "")]) as hook:
        hook.extra_headers["Location"] = inner.url
        endpoint = hooks.endpoint(hook.url, event_types=["email.delivered"])
        hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
        hooks.h.worker.handle(hooks.h.queue.due()[0].body)
    assert inner.requests == []
    [entry] = hooks.log(endpoint["id"])
    assert entry["status"] == "retrying" and entry["last_code"] == 307
    assert "redirect" in entry["last_error"]


def test_the_same_event_twice_is_delivered_once(hooks: Hooks, tenant: Any) -> None:
    envelope = for_account(load_event("delivery"), tenant.account_id)
    with receiver() as hook:
        endpoint = hooks.endpoint(hook.url)
        hooks.ingest(tenant, envelope)
        again = dict(envelope, id="another-envelope-id")
        assert hooks.ingest(tenant, again).counts() == {"duplicate": 1}
        hooks.h.run()
    assert len(hook.requests) == 1
    assert [e["attempts"] for e in hooks.log(endpoint["id"])] == [1]


def test_types_and_tag_filters_choose_what_an_endpoint_gets(hooks: Hooks, tenant: Any) -> None:
    send = for_account(load_event("send"), tenant.account_id)
    tags = send["detail"]["mail"]["tags"]
    name = next(n for n in tags if not n.startswith("ses:"))
    with receiver() as everything, receiver() as tagged, receiver() as other_tag:
        hooks.endpoint(everything.url)
        hooks.endpoint(tagged.url, event_types=["email.*"], tags=[f"{name}:{tags[name][0]}"])
        hooks.endpoint(other_tag.url, event_types=["email.sent"], tags=[f"{name}:nope"])
        hooks.endpoint(everything.url.replace("/hooks", "/bounces"), event_types=["email.bounced"])
        hooks.ingest(tenant, send)
        hooks.h.run()
    assert len(everything.requests) == 1 and len(tagged.requests) == 1
    assert other_tag.requests == []
    assert body_of(tagged.requests[0])["type"] == "email.sent"


def test_a_rotated_secret_signs_beside_the_old_one_until_the_overlap_ends(
    hooks: Hooks, tenant: Any
) -> None:
    with receiver() as hook:
        created = hooks.endpoint(hook.url, event_types=["email.delivered", "email.sent"])
        rotated = hooks.service.rotate(tenant.tenant_id, created["id"], {"overlap_hours": 1})
        old, new = created["secret"], rotated["secret"]
        assert old != new and len(rotated["secrets"]) == 2
        hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
        hooks.h.run()
        hooks.h.clock.advance(2 * 3600)
        hooks.ingest(tenant, for_account(load_event("send"), tenant.account_id))
        hooks.h.run()
    during, after = hook.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(during.body, during.headers)
    # Two hours on (the test's clock; the library checks the timestamp against the real one):
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert _signed_by(new, after) and not _signed_by(old, after)


def test_secrets_are_stored_sealed_and_never_shown_again(hooks: Hooks, tenant: Any) -> None:
    from chalicelib.core import keys
    from chalicelib.core.tables import WebhookEndpointModel

    created = hooks.endpoint("http://127.0.0.1:9/hooks")
    secret = created["secret"]
    raw = WebhookEndpointModel.get(
        keys.webhooks_pk(tenant.tenant_id), keys.endpoint_sk(created["id"])
    ).attribute_values
    assert secret not in json.dumps(raw, default=str)
    assert secret not in json.dumps(hooks.service.get(tenant.tenant_id, created["id"]))
    assert secret not in json.dumps(hooks.service.endpoints(tenant.tenant_id))
    # Sealed for this endpoint: moved to another, it does not open.
    from chalicelib.webhooks import secrets
    from cryptography.exceptions import InvalidTag

    sealed, secret_id = raw["secrets"][0]["sealed"], raw["secrets"][0]["id"]
    box = secrets.SecretBox(b"w" * 32)
    mine = secrets.context(tenant.tenant_id, created["id"], secret_id)
    assert box.open(sealed, mine).value == secret
    with pytest.raises(InvalidTag):
        box.open(sealed, secrets.context("another-tenant", created["id"], secret_id))


def test_replay_one_delivery_and_a_time_range(hooks: Hooks, tenant: Any) -> None:
    with receiver([(500, "no")] * 2 + [(200, "ok")]) as hook:
        endpoint = hooks.endpoint(hook.url, event_types=["email.delivered", "email.sent"])
        hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
        hooks.ingest(tenant, for_account(load_event("send"), tenant.account_id))
        for task in hooks.h.queue.due():  # one attempt each: both fail, retries are queued
            hooks.h.worker.handle(task.body)
        hooks.h.queue.pending.clear()  # the retries are lost, say: replay instead
        first, second = sorted(hooks.log(endpoint["id"]), key=lambda e: e["id"])
        one = hooks.service.replay(tenant.tenant_id, endpoint["id"], first["id"])
        assert one["queued"] == 1
        hooks.h.run()
        everything = hooks.service.replay_range(
            tenant.tenant_id,
            endpoint["id"],
            {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z", "status": "retrying"},
        )
        assert everything["delivery_ids"] == [second["id"]]
        hooks.h.run()
    states = {e["id"]: e for e in hooks.log(endpoint["id"])}
    assert states[first["id"]]["status"] == "delivered" and states[first["id"]]["attempts"] == 2
    assert states[second["id"]]["status"] == "delivered"
    ids = [r.headers["webhook-id"] for r in hook.requests]
    assert len(ids) == 4 and len(set(ids)) == 2  # a replay keeps the message's webhook-id


def test_the_test_event_reaches_an_endpoint_whatever_its_types(hooks: Hooks, tenant: Any) -> None:
    with receiver() as hook:
        endpoint = hooks.endpoint(hook.url, event_types=["alert.*"])
        queued = hooks.service.send_test(tenant.tenant_id, endpoint["id"])
        hooks.h.run()
    [request] = hook.requests
    assert body_of(request)["type"] == "webhook.test"
    assert request.headers["webhook-id"] == queued["webhook_id"]
    Webhook(endpoint["secret"]).verify(request.body, request.headers)


def test_one_slow_endpoint_does_not_hold_another_in_the_same_batch(
    hooks: Hooks, tenant: Any
) -> None:
    """The slow receiver answers only once the fast one has been called: attempted one after
    the other (slow first), the slow attempt would time out and the fast one never be reached
    while it waits."""
    fast_called = threading.Event()
    with receiver() as fast, receiver() as slow:
        original = slow.answer

        def wait_for_fast() -> tuple[int, str]:
            fast_called.wait(timeout=4)
            return original() if fast_called.is_set() else (599, "fast never called")

        slow.answer = wait_for_fast  # type: ignore[method-assign]
        fast_original = fast.answer

        def mark() -> tuple[int, str]:
            fast_called.set()
            return fast_original()

        fast.answer = mark  # type: ignore[method-assign]
        first = hooks.endpoint(slow.url, event_types=["email.delivered"])
        second = hooks.endpoint(fast.url, event_types=["email.sent"])
        hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
        hooks.ingest(tenant, for_account(load_event("send"), tenant.account_id))
        records = hooks.h.queue.records()
        records.sort(key=lambda r: json.loads(r["body"])["e"] != first["id"])  # slow first
        assert hooks.h.worker.handle_records(records) == {"batchItemFailures": []}
    assert [e["status"] for e in hooks.log(first["id"])] == ["delivered"]
    assert [e["status"] for e in hooks.log(second["id"])] == ["delivered"]


def test_a_task_whose_storage_fails_is_reported_for_sqs_to_deliver_again(
    hooks: Hooks, tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.core.errors import TransientStorageError
    from chalicelib.webhooks.store import WebhookStore

    def throttled(*args: Any, **kwargs: Any) -> Any:
        raise TransientStorageError("throttled")

    hooks.endpoint("http://127.0.0.1:9/hooks")
    hooks.ingest(tenant, for_account(load_event("delivery"), tenant.account_id))
    records = hooks.h.queue.records()
    monkeypatch.setattr(WebhookStore, "endpoint", staticmethod(throttled))
    answer = hooks.h.worker.handle_records(records)
    assert [f["itemIdentifier"] for f in answer["batchItemFailures"]] == [
        r["messageId"] for r in records
    ]
