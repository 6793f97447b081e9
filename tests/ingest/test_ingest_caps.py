"""The adversarial event: a Send with everything SES allows at most (50 recipients, 50 tags of
256 + 256 characters). Stored within the caps of chalicelib/ingest/caps.py, what was left out
counted on the row and in a metric, and its write bill bounded (counted, not timed)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.tables import EventModel, MessageEventModel, TenantModel
from chalicelib.ingest import caps
from chalicelib.ingest.directory import TenantDirectory
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes

from bench.ingest_bench import CapacityMeter
from tests.conftest import load_event
from tests.support import TestTenant, for_account

WORST_EVENT_WCU = 60  # the goal of issue 14 for one event, whatever it carries


def adversarial(account: str) -> dict[str, Any]:
    raw = for_account(copy.deepcopy(load_event("send")), account)
    mail = raw["detail"]["mail"]
    recipients = [f"r{i:02d}-{'x' * 40}@example.com" for i in range(50)]
    mail["destination"] = recipients
    mail["commonHeaders"]["to"] = recipients
    mail["tags"] = {f"{i:02d}{'n' * 254}": [f"{i:02d}{'v' * 254}"] for i in range(49)} | {
        "ses:configuration-set": ["sesami-events"]
    }
    return raw


def rows(t: TestTenant) -> list[EventModel]:
    return list(EventModel.query(keys.events_pk(t.tenant_id, 0)))


def test_the_worst_event_is_stored_within_the_caps_and_what_was_left_out_counted(
    tenant: TestTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = adversarial(tenant.account_id)
    tenant.directory.tenant_for_account(tenant.account_id)  # a warm instance's cache
    with CapacityMeter() as meter:
        report = ingest_envelopes([raw], tenants=tenant.directory, store=tenant.store)
    assert report.outcomes == [Outcome.STORED]
    assert meter.billed_write <= WORST_EVENT_WCU, meter.billed_write
    assert sum(meter.requests.values()) == 3  # read, rows, transaction

    stored = rows(tenant)
    assert len(stored) == caps.MAX_ROW_RECIPIENTS
    user_tags = stored[0].tag_map()
    assert 0 < len(user_tags) <= caps.MAX_STORED_TAGS
    assert sum(len(k) + sum(len(v) for v in vs) for k, vs in user_tags.items()) <= (
        caps.MAX_STORED_TAG_CHARS
    )
    dropped = {"recipients": 50 - caps.MAX_ROW_RECIPIENTS, "tags": 49 - len(user_tags)}
    assert all((row.detail or {}).get("capped") == dropped for row in stored)
    (entry,) = MessageEventModel.query(
        keys.message_pk(tenant.tenant_id, raw["detail"]["mail"]["messageId"]),
        MessageEventModel.sk.startswith("E#"),
    )
    assert (entry.detail or {}).get("capped") == dropped
    # The message still names every recipient: the entry of a Send is its destination's.
    assert entry.to_destination and entry.recipients is None
    from chalicelib.history.timeline import message_detail

    shown = message_detail(tenant.tenant_id, raw["detail"]["mail"]["messageId"])["events"]
    assert shown[0]["recipients"] == sorted(raw["detail"]["mail"]["destination"])
    # No tag view: the tenant designated no tag.
    for pair in stored[0].tag_pairs or ():
        assert not list(EventModel.query(keys.tag_pk(tenant.tenant_id, pair, 0)))

    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    counted = {x["Cap"]: x["CappedEvents"] for x in lines if "CappedEvents" in x}
    assert counted == dropped

    with CapacityMeter() as again:  # a redelivery writes nothing more
        report = ingest_envelopes([raw], tenants=tenant.directory, store=tenant.store)
    assert report.outcomes == [Outcome.DUPLICATE] and again.billed_write == 0


def test_the_tags_kept_do_not_depend_on_their_order() -> None:
    from chalicelib.events.ses import parse_envelope, parse_event

    raw = adversarial("111122223333")
    event = parse_event(parse_envelope(raw))
    tags = raw["detail"]["mail"]["tags"]
    raw["detail"]["mail"]["tags"] = dict(reversed(list(tags.items())))
    reordered = parse_event(parse_envelope(raw))
    assert dict(caps.cap(event).event.mail.tags) == dict(caps.cap(reordered).event.mail.tags)
    assert caps.cap(event).event.mail.tags["ses:configuration-set"] == ("sesami-events",)


def test_only_designated_tags_get_a_tag_view(tenant: TestTenant) -> None:
    TenantModel(tenant.tenant_id).update(
        actions=[TenantModel.indexed_tags.set({"campaign", "a", "b", "z"})]
    )
    directory = TenantDirectory(ttl_seconds=60)
    ref = directory.tenant_for_account(tenant.account_id)
    assert ref is not None and ref.indexed_tags == {"a", "b", "campaign"}  # at most 3
    raw = for_account(load_event("send"), tenant.account_id)
    raw["detail"]["mail"]["tags"] = {"campaign": ["nov"], "z": ["1"], "ses:x": ["y"]}
    assert ingest_envelopes([raw], tenants=directory, store=tenant.store).outcomes == [
        Outcome.STORED
    ]
    assert len(list(EventModel.query(keys.tag_pk(tenant.tenant_id, "campaign=nov", 0)))) == 1
    assert not list(EventModel.query(keys.tag_pk(tenant.tenant_id, "z=1", 0)))
