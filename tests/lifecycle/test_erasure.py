"""Recipient erasure (DELETE /recipients/{email}) on DynamoDB Local: every trace of the address
gone from every table of the tenant (a scan of every test table looks for it in every spelling),
the other recipients and the other tenant untouched, a suppressed address still refused at
send time, and nothing brought back by late events or replays."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from chalicelib.core import keys, wiring
from chalicelib.core.errors import Conflict, NotFound
from chalicelib.core.tables import MessageModel, SuppressionModel
from chalicelib.history import reports
from chalicelib.history.event_list import TimeRange
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes
from chalicelib.lifecycle.spellings import scrub, spellings
from chalicelib.sending.store import SendingStore

from tests.lifecycle.support import (
    admin,
    click_of,
    event,
    items_mentioning,
    open_of,
    personal_link,
    store_batch,
    store_webhooks,
    tagged,
    unique,
)
from tests.support import TestTenant, make_tenant

YEAR = TimeRange(datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))


def ingest(t: TestTenant, *raws: dict[str, Any]) -> list[Outcome]:
    return ingest_envelopes(list(raws), tenants=t.directory, store=t.store).outcomes


@dataclass
class World:
    tenant: TestTenant
    other: TestTenant
    target: str
    keep: str
    keep2: str
    alone: str  # message to the target only
    shared: str  # message to the target and two others
    keep_only: str
    pending: str  # recorded by POST /mail, no event yet
    envelopes: list[dict[str, Any]]


def mid() -> str:
    return f"0100{uuid.uuid4().hex}-000000"


@pytest.fixture
def world(app_settings: Any) -> World:
    t, other = make_tenant(app_settings), make_tenant(app_settings)
    target, keep, keep2 = unique("Erase.Me"), unique("keep"), unique("keep2")
    alone, shared, keep_only, pending = mid(), mid(), mid(), mid()
    acct = t.account_id
    send_alone = tagged(event("send", alone, acct, alice=target), recipient=target.lower())
    send_shared = event("send_multi", shared, acct, bob=target, carol=keep, dave=keep2)
    envelopes = [
        send_alone,
        event("delivery", alone, acct, alice=target),
        event("open", alone, acct, alice=target),
        click_of(send_alone, personal_link(target)),
        event("complaint", alone, acct, frank=target),  # suppresses the target
        send_shared,
        event("delivery_multi", shared, acct, bob=target, carol=keep, dave=keep2),
        event("bounce_permanent_multi", shared, acct, bob=target, carol=keep, dave=keep2),
        open_of(send_shared),
        click_of(send_shared, personal_link(target)),
        event("send", keep_only, acct, alice=keep),
    ]
    # Suppressed by hand and removed again: a tombstone of the target (the complaint below
    # suppresses it anew, and leaves the tombstone as it is).
    wiring.suppression_service().add(t.tenant_id, target, "asked", "admin")
    wiring.suppression_service().remove(t.tenant_id, target, "by mistake", "admin")
    assert SuppressionModel.count(keys.removed_pk(t.tenant_id)) == 1
    assert set(ingest(t, *envelopes)) == {Outcome.STORED}
    # The same address in another tenant: never touched.
    theirs = mid()
    ingest(
        other,
        event("send", theirs, other.account_id, alice=target),
        event("complaint", theirs, other.account_id, frank=target),
    )
    store = SendingStore(app_settings)
    tags = {"campaign": "x"}
    assert store.record_sent(
        t.tenant_id, pending, source="a@example.net", subject="Hi", destination=[target], tags=tags
    )
    # A finished bulk batch and an Idempotency-Key record that name the target.
    batch = uuid.uuid4().hex
    store_batch(
        store,
        t.tenant_id,
        batch,
        status="finished",
        recipients=[
            (f"Erase Me <{target}>", target, target.lower(), {"name": "Erase"}),
            (keep, keep, keep, {"name": "Keep"}),
        ],
        sent=[target, keep],
    )
    assert store.claim(t.tenant_id, "order-1", "f" * 64) is None
    store.complete(t.tenant_id, "order-1", 200, {"recipients": [target, keep], "skipped": []})
    # An event ingest could not read, attributed to the tenant.
    t.store.quarantine(
        {"detail": {"mail": {"destination": [target.upper()]}}},
        "bad",
        account=acct,
        tenant_id=t.tenant_id,
    )
    # Webhook deliveries that name the target (one of an endpoint deleted since), alerts.
    store_webhooks(t.tenant_id, target)
    return World(t, other, target, keep, keep2, alone, shared, keep_only, pending, envelopes)


def erase(w: World, address: str | None = None) -> tuple[int, dict[str, Any]]:
    return wiring.lifecycle().erase(admin(w.tenant.tenant_id), address or w.target)


def test_erasure_leaves_no_spelling_of_the_address_in_any_table(
    world: World, app_settings: Any
) -> None:
    w = world
    before = items_mentioning(app_settings, spellings(w.target), w.tenant.tenant_id)
    assert before.tables() >= {
        "events", "messages", "suppression", "sending", "quarantine", "webhooks"
    }  # fmt: skip
    status, job = erase(w)
    assert status == 200 and job["state"] == "finished"
    counts = job["counts"]
    assert counts["event_rows"] >= 7 and counts["tag_view_rows"] >= 1
    assert counts["messages_erased"] == 2  # alone, and the pending one
    assert counts["messages_anonymised"] == 1  # shared
    assert counts["suppression_entries"] == 1 and counts["kept_hashed_suppression"] == 1
    assert counts["batch_recipients"] == 1 and counts["idempotency_records"] == 1
    assert counts["quarantine"] == 1
    assert counts["suppression_tombstones"] == 1
    assert SuppressionModel.count(keys.removed_pk(w.tenant.tenant_id)) == 0
    assert counts["webhook_deliveries"] == 2  # the live endpoint's and the deleted one's
    # The personal link clicked in both messages, on two days: two day items.
    assert counts["link_counters"] == 2
    left = items_mentioning(app_settings, spellings(w.target), w.tenant.tenant_id)
    assert left.items == [], left.items
    # Nor in the punycode / percent-encoded / upper-case forms spellings() is made of.
    assert quote(w.target, safe="").lower() in spellings(w.target)


def test_other_recipients_and_the_other_tenant_are_untouched(
    world: World, app_settings: Any
) -> None:
    w = world
    tid = w.tenant.tenant_id
    keep_before = reports.recipient_history(tid, w.keep, YEAR, 100)
    theirs_before = items_mentioning(app_settings, [w.target], w.other.tenant_id)
    erase(w)
    keep_after = reports.recipient_history(tid, w.keep, YEAR, 100)
    assert keep_after["messages"] == keep_before["messages"]
    assert keep_after["suppressed"] is True  # the multi-recipient bounce suppressed keep too
    shared = reports.message_detail(tid, w.shared)
    assert sorted(shared["destination"]) == sorted([w.keep, w.keep2])
    assert set(shared["recipients"]) == {w.keep, w.keep2}
    assert reports.message_detail(tid, w.keep_only)["destination"] == [w.keep]
    theirs_after = items_mentioning(app_settings, [w.target], w.other.tenant_id)
    assert len(theirs_after.items) == len(theirs_before.items) > 0
    assert (
        SuppressionModel.count(
            keys.tenant_pk(w.other.tenant_id), SuppressionModel.address == w.target.lower()
        )
        == 1
    )


def test_an_erased_suppressed_address_is_still_refused_at_send_time(
    world: World, app_settings: Any
) -> None:
    w = world
    erase(w)
    store = SendingStore(app_settings)
    refused = store.suppressed(w.tenant.tenant_id, [w.target, w.keep])
    assert set(refused) == {w.target.lower(), w.keep.lower()}
    assert refused[w.target.lower()].reason == "COMPLAINT"
    # ... and it is not on the list by name.
    listed = wiring.suppression_service().search(w.tenant.tenant_id)
    assert w.target.lower() not in json.dumps(listed).lower()


def test_erasing_a_suppressed_address_raises_the_list_version(
    world: World, app_settings: Any
) -> None:
    # Moving the entry to its hash is a change to the list: the send-time cache must not read
    # what it stored for the address before (sending/suppression_cache.py).
    store = SendingStore(app_settings)
    before = store.suppression_version(world.tenant.tenant_id)
    erase(world)
    assert store.suppression_version(world.tenant.tenant_id) > before


def test_late_events_and_replays_do_not_bring_the_address_back(
    world: World, app_settings: Any
) -> None:
    w = world
    erase(w)
    acct = w.tenant.account_id
    late = [
        open_of(event("send", w.alone, acct, alice=w.target), 33),  # a new open of it
        open_of(event("send_multi", w.shared, acct, bob=w.target, carol=w.keep, dave=w.keep2), 30),
    ]
    assert ingest(w.tenant, *late) == [Outcome.ERASED, Outcome.ERASED]
    replayed = ingest(w.tenant, *w.envelopes)  # e.g. the DLQ replayed after the erasure
    assert set(replayed) <= {Outcome.DUPLICATE, Outcome.ERASED}
    assert items_mentioning(app_settings, spellings(w.target), w.tenant.tenant_id).items == []
    with pytest.raises(NotFound):
        reports.message_detail(w.tenant.tenant_id, w.alone)
    assert reports.recipient_history(w.tenant.tenant_id, w.target, YEAR, 100)["messages"] == []


def test_erasing_twice_is_harmless_and_the_audit_names_only_the_hash(world: World) -> None:
    w = world
    _, first = erase(w)
    status, second = erase(w, w.target.upper())
    assert status == 200 and set(second["counts"]) <= {"kept_hashed_suppression"}
    trail = wiring.lifecycle().audit(admin(w.tenant.tenant_id), None, None)["entries"]
    actions = [e["action"] for e in trail]
    assert actions.count("recipient.erased") == 2
    assert actions.count("recipient.erasure_requested") == 2
    digest = keys.address_hash(w.tenant.tenant_id, w.target.lower())
    assert {e["target"] for e in trail if e["action"].startswith("recipient.")} == {digest}
    assert w.target.lower() not in json.dumps(trail).lower()
    done = [e for e in trail if e["action"] == "recipient.erased"][-1]
    assert done["detail"]["counts"] == first["counts"] and done["actor"] == "admin@example.net"


def test_an_erasure_waits_for_a_batch_still_sending_to_the_address(
    world: World, app_settings: Any
) -> None:
    w = world
    batch = uuid.uuid4().hex
    store_batch(
        SendingStore(app_settings),
        w.tenant.tenant_id,
        batch,
        status="sending",
        recipients=[(w.target, w.target, w.target, {})],
    )
    with pytest.raises(Conflict, match="still sending"):
        erase(w)
    aggregate = MessageModel.get(keys.message_pk(w.tenant.tenant_id, w.alone), "AGG")
    assert not (aggregate.body or {}).get("erased")  # refused before anything was changed


def test_an_erasure_longer_than_the_request_goes_on_in_the_background(
    world: World, app_settings: Any
) -> None:
    from chalicelib.lifecycle.jobs import Jobs

    started: list[dict[str, Any]] = []

    class Runner:
        def start(self, event: dict[str, Any]) -> None:
            started.append(event)

    service = wiring.lifecycle()
    jobs: Jobs = service._jobs
    jobs._runner = Runner()
    service._inline = 0.0  # out of time after the first step
    status, job = service.erase(admin(world.tenant.tenant_id), world.target)
    assert status == 202 and job["state"] == "running" and job["step"] != "done"
    assert "address" not in json.dumps(job).lower().replace("address_hash", "")
    while started:
        event_ = started.pop()
        jobs.run(event_, remaining_ms=60_000)
    progress = service.erasure(admin(world.tenant.tenant_id), job["job_id"])
    assert progress["state"] == "finished" and progress["counts"]["messages_erased"] == 2
    found = items_mentioning(app_settings, spellings(world.target), world.tenant.tenant_id)
    assert found.items == []


def test_a_webhook_queued_before_the_erasure_is_dropped_and_later_mail_is_delivered(
    world: World, app_settings: Any
) -> None:
    """SQS messages cannot be edited: one naming the address, queued before the erasure, is
    dropped when the delivery function takes it (no attempt, no log entry); a webhook of mail
    sent to the address after the erasure is new history and is delivered."""
    from chalicelib.webhooks.outbound import Exchange

    from tests.webhooks.support import hooks_for

    w = world
    posted: list[str] = []

    def send(url: str, body: bytes, headers: Any) -> Exchange:
        posted.append(body.decode())
        return Exchange(200, 3.0, "ok")

    hooks = hooks_for(w.tenant.tenant_id, send=send)
    endpoint = hooks.endpoint("http://127.0.0.1:9/hooks")["id"]
    acct = w.tenant.account_id
    queued = event("open", w.alone, acct, alice=w.target)
    queued["id"] = str(uuid.uuid4())
    queued["detail"]["open"]["timestamp"] = queued["detail"]["mail"]["timestamp"][:17] + "44.000Z"
    hooks.ingest(w.tenant, queued, event("send", w.keep_only, acct, alice=w.keep))
    assert len([t for t in hooks.h.queue.sent if t.body["k"] == "deliver"]) >= 2
    erase(w)
    later = event("send", mid(), acct, alice=w.target)  # mailed again, after the erasure
    now = datetime.now(UTC)
    later["detail"]["mail"]["timestamp"] = keys.iso_ms(now)
    hooks.ingest(w.tenant, later)
    outcomes = hooks.h.run()
    assert outcomes.count("erased") == 1 and outcomes.count("delivered") == 2, outcomes
    naming = [b for b in posted if w.target.lower() in b.lower()]
    assert len(naming) == 1 and json.loads(naming[0])["data"]["at"] >= keys.iso_ms(now)[:19]
    assert len(hooks.log(endpoint)) == 2  # the erased one left no entry


def test_scrub_redacts_every_spelling_and_drops_keys_naming_the_address() -> None:
    forms = spellings("Ann@Bücher.de")
    doc = {
        "links": {"https://x.example/?u=ann%40xn--bcher-kva.de": 3, "https://x.example/": 1},
        "text": "Hello ANN@BÜCHER.DE, or ann@xn--bcher-kva.de",
        "n": 4,
        "list": ["ann@bücher.de", "bob@example.com"],
    }
    clean, changed = scrub(doc, forms)
    assert changed
    assert clean["links"] == {"https://x.example/": 1}
    assert clean["text"] == "Hello [erased], or [erased]"
    assert clean["list"] == ["[erased]", "bob@example.com"] and clean["n"] == 4
    assert scrub({"a": "nothing here"}, forms) == ({"a": "nothing here"}, False)
