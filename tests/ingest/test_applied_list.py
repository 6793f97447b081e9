"""The aggregate's applied list: a message's first events are deduplicated by the digests their
aggregate holds (their timeline entries are written beside the rows, one write unit, outside the
transaction); past the list, and for aggregates older than it, each event's entry is its dedup
record again. Every way between the two keeps exactly once."""

from __future__ import annotations

import copy
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from chalicelib.core import keys
from chalicelib.core.errors import TransientStorageError
from chalicelib.core.tables import MessageEventModel, MessageModel
from chalicelib.ingest import store as store_module
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes

from tests.conftest import load_event
from tests.ingest.test_ingest import message, timeline
from tests.ingest.test_ingest_faults import counters, throttled
from tests.support import TestTenant, for_account

pytestmark = pytest.mark.ddb_local

MESSAGE = "010001a19bc15a51-f7fd8b2d-fc26-45b7-90fb-8b8d91076163-000000"


def _opens(t: TestTenant, n: int) -> list[dict[str, Any]]:
    """`n` distinct Opens of one message, a minute apart."""
    base = for_account(load_event("open"), t.account_id)
    out = []
    for i in range(n):
        raw = copy.deepcopy(base)
        raw["id"] = str(uuid.uuid4())
        opened = raw["detail"]["open"]["timestamp"].replace("Z", "+00:00")
        at = datetime.fromisoformat(opened) + timedelta(minutes=i)
        raw["detail"]["open"]["timestamp"] = keys.iso_ms(at)
        out.append(raw)
    return out


def _ingest(t: TestTenant, raws: list[dict[str, Any]]) -> list[Outcome]:
    return ingest_envelopes(raws, tenants=t.directory, store=t.store).outcomes


def test_first_events_are_deduplicated_by_the_aggregate_and_entries_are_projections(
    tenant: TestTenant,
) -> None:
    raws = [for_account(load_event(n), tenant.account_id) for n in ("send", "delivery")]
    assert _ingest(tenant, raws) == [Outcome.STORED, Outcome.STORED]
    applied = message(tenant, MESSAGE).body["applied"]
    assert len(applied) == 2 * store_module.DIGEST_CHARS
    assert all(e.projected for e in timeline(tenant, MESSAGE))
    assert _ingest(tenant, raws[::-1]) == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert counters(tenant) == 2


def test_past_the_list_entries_deduplicate_and_every_redelivery_is_recognised(
    tenant: TestTenant,
) -> None:
    n = store_module.MAX_APPLIED + 6
    opens = _opens(tenant, n)
    assert _ingest(tenant, opens) == [Outcome.STORED] * n
    agg = message(tenant, MESSAGE)
    assert agg.events == n and agg.opens == n
    assert len(agg.body["applied"]) == store_module.MAX_APPLIED * store_module.DIGEST_CHARS
    entries = timeline(tenant, MESSAGE)
    assert sum(1 for e in entries if e.projected) == store_module.MAX_APPLIED
    assert sum(1 for e in entries if not e.projected) == n - store_module.MAX_APPLIED
    # Both kinds of event, redelivered in reverse, are duplicates; nothing is counted twice.
    assert _ingest(tenant, opens[::-1]) == [Outcome.DUPLICATE] * n
    assert message(tenant, MESSAGE).events == n
    assert counters(tenant) == n


def test_an_attempt_that_failed_after_its_entry_is_stored_once_even_past_the_list(
    tenant: TestTenant,
) -> None:
    """The entry of an event whose aggregate write failed stays behind, marked projected: it proves
    nothing, so the retry stores the event, even when the list has filled meanwhile."""
    first, *others = _opens(tenant, store_module.MAX_APPLIED + 1)
    with throttled("PutItem"), pytest.raises(TransientStorageError):
        _ingest(tenant, [first])
    left = timeline(tenant, MESSAGE)
    assert len(left) == 1 and left[0].projected
    assert _ingest(tenant, others) == [Outcome.STORED] * len(others)  # the list is now full
    assert _ingest(tenant, [first, first]) == [Outcome.STORED, Outcome.DUPLICATE]
    assert message(tenant, MESSAGE).events == len(others) + 1
    assert counters(tenant) == len(others) + 1


def test_an_aggregate_older_than_the_list_keeps_deduplicating_by_entries(
    tenant: TestTenant,
) -> None:
    """What ingest stored before the list existed: entries as dedup records, no list."""
    raws = [for_account(load_event(n), tenant.account_id) for n in ("send", "delivery")]
    _ingest(tenant, raws)
    pk = keys.message_pk(tenant.tenant_id, MESSAGE)
    agg = MessageModel.get(pk, "AGG")
    agg.body = {k: v for k, v in agg.body.items() if k != "applied"}
    agg.save()
    for entry in MessageEventModel.query(pk, MessageEventModel.sk.startswith("E#")):
        entry.projected = None
        entry.save()
    assert _ingest(tenant, raws) == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    opened = for_account(load_event("open"), tenant.account_id)
    assert _ingest(tenant, [opened, opened]) == [Outcome.STORED, Outcome.DUPLICATE]
    assert "applied" not in message(tenant, MESSAGE).body
    assert not any(e.projected for e in timeline(tenant, MESSAGE))
    assert counters(tenant) == 3
