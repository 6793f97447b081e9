"""Every item one event makes stays under 16 KB whatever SES reports (issue 14), and the
message's timeline still tells every recipient of each event, by name or by count: a timeline
entry to the message's destination names no one (the page takes the aggregate's destination),
an entry to others names at most a few and counts the rest (`recipients_more`), a Bounce's
per-recipient facts are kept within a byte budget and the others counted (`recipients_other`).
The worst events (devstack/worst_case.py) go through the real ingest on DynamoDB Local."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from chalicelib.core import keys
from chalicelib.core.item_size import item_bytes
from chalicelib.core.signing import Signer
from chalicelib.core.tables import EventModel, MessageEventModel
from chalicelib.events.messages import MAX_ENTRY_RECIPIENT_BYTES, MAX_ENTRY_RECIPIENTS
from chalicelib.events.ses import SesEvent
from chalicelib.history.timeline import message_detail
from chalicelib.ingest.store import Recorded
from chalicelib.lifecycle import items

from devstack import worst_case
from tests.support import TestTenant

pytestmark = pytest.mark.ddb_local

ITEM_LIMIT = 16 * 1024  # the goal of issue 14 for every item any event makes


# The worst case's message ID (256 4-byte characters) makes a messages-table key past DynamoDB's
# 1,024 bytes for a sort key (the by_pending index sorts on it): such an event is refused as
# malformed whatever it carries. The events here carry the longest ID that fits.
MESSAGE_ID = "\U0001f600" * 237


def _worst() -> list[SesEvent]:
    every = worst_case.events()
    send, delivery, bounce = every[:3]
    clicks = [e for e in every if e.event_type.value == "Click"][:12]
    opens = [e for e in every if e.event_type.value == "Open"][:6]
    chosen = [send, delivery, bounce, *clicks, *opens, *worst_case.item_events()]
    return [replace(e, mail=replace(e.mail, message_id=MESSAGE_ID)) for e in chosen]


@pytest.fixture(scope="module")
def stored(settings: object) -> tuple[TestTenant, list[SesEvent]]:
    from tests.support import make_tenant

    tenant = make_tenant(settings)  # type: ignore[arg-type]
    events = _worst()
    for event in events:
        assert tenant.store.record(tenant.ref, event).recorded is Recorded.STORED
    return tenant, events


def test_every_item_the_worst_events_make_is_at_most_16_kb(
    stored: tuple[TestTenant, list[SesEvent]],
) -> None:
    tenant, events = stored
    pk = keys.message_pk(tenant.tenant_id, events[0].mail.message_id)
    entries = list(MessageEventModel.query(pk, MessageEventModel.sk.startswith("E#")))
    assert len(entries) == len(events)
    sizes = {e.event_type: item_bytes(e.serialize()) for e in entries}
    assert max(sizes.values()) <= ITEM_LIMIT, sizes
    rows = list(EventModel.query(keys.events_pk(tenant.tenant_id, 0)))
    assert rows and max(item_bytes(r.serialize()) for r in rows) <= ITEM_LIMIT


def test_an_entry_names_at_most_a_few_recipients_within_its_bytes() -> None:
    from chalicelib.events.messages import timeline_entry

    events = _worst()
    destination = events[0].mail.destination
    for event in events:
        entry = timeline_entry(
            "pk", event, destination, shard=0, extra={},
            expires_at=worst_case.SENT,
        )  # fmt: skip
        named = entry.recipients or set()
        assert len(named) <= MAX_ENTRY_RECIPIENTS
        assert sum(len(a.encode()) for a in named) <= MAX_ENTRY_RECIPIENT_BYTES
        if entry.to_destination:
            assert not named and set(event.recipients) == set(event.mail.destination)
        else:
            assert len(named) + int(entry.recipients_more or 0) == len(set(event.recipients))


def test_the_timeline_tells_every_recipient_by_name_or_count(
    stored: tuple[TestTenant, list[SesEvent]],
) -> None:
    tenant, events = stored
    message_id = events[0].mail.message_id
    by_id, cursor, signer = {}, None, Signer(b"e" * 32)
    for _page in range(len(events) + 1):  # the worst summary leaves room for few per page
        page = message_detail(
            tenant.tenant_id,
            message_id,
            now=worst_case.SENT + timedelta(days=301),
            limit=500,
            signer=signer,
            cursor=cursor,
        )
        by_id.update({e["id"]: e for e in page["events"]})
        if (cursor := page["next"]) is None:
            break
    assert len(by_id) == len(events)
    destination = sorted(events[0].mail.destination)
    for event in events:
        view = by_id[event.key]
        if event.event_type.value in ("Send", "Delivery"):  # to the whole destination
            assert view["recipients"] == destination and view["recipients_more"] == 0
        else:  # 50 others, or none (an open of a message to several)
            assert set(view["recipients"]) <= set(event.recipients)
            assert len(view["recipients"]) + view["recipients_more"] == len(event.recipients)
        if event.event_type.value == "Bounce":
            facts = view["detail"]["recipients"]
            assert len(facts) >= 1 and len(facts) + view["detail"]["recipients_other"] == 50
    bounces = [by_id[e.key] for e in events if e.event_type.value == "Bounce"]
    assert all(b["recipients_more"] > 0 for b in bounces)  # 50 long addresses: counted


def test_erasure_and_deletion_find_the_rows_of_an_entry_that_names_no_one(
    stored: tuple[TestTenant, list[SesEvent]],
) -> None:
    tenant, events = stored
    pk = keys.message_pk(tenant.tenant_id, events[0].mail.message_id)
    entries = list(MessageEventModel.query(pk, MessageEventModel.sk.startswith("E#")))
    delivery = next(e for e in entries if e.event_type == "Delivery")
    assert delivery.to_destination and delivery.recipients is None
    rows = items.existing_rows(items.derived_rows(tenant.tenant_id, [delivery]))
    from chalicelib.ingest.caps import MAX_ROW_RECIPIENTS

    assert len(rows) == MAX_ROW_RECIPIENTS < items.ROW_PROBE
