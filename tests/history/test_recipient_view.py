"""The by_recipient index carries only the keys, message, status and engagement of each row (not a
copy of the row: half the events table's storage). A recipient's page of GET /events filters on
what the index carries and then reads its rows from the table: complete rows, in time order, in
two round trips; the recipient page (GET /recipients/{email}) needs the index alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from chalicelib.core.signing import Signer
from chalicelib.core.tables import RECIPIENT_INDEX_ATTRIBUTES, table_specs
from chalicelib.events.status import Status
from chalicelib.history.event_list import EventQuery, TimeRange, list_events
from chalicelib.history.reports import recipient_history
from chalicelib.ingest.pipeline import Outcome, ingest_envelopes

from tests.conftest import load_event
from tests.support import TestTenant, for_account

pytestmark = pytest.mark.ddb_local

SIGNER = Signer(b"r" * 32)
ALICE = "alice@example.com"


def _stored(tenant: TestTenant) -> None:
    raws = [for_account(load_event(n), tenant.account_id) for n in ("send", "delivery", "open")]
    report = ingest_envelopes(raws, tenants=tenant.directory, store=tenant.store)
    assert report.outcomes == [Outcome.STORED] * 3


def _span() -> TimeRange:
    now = datetime.now(UTC)
    return TimeRange(now - timedelta(days=3650), now)


def test_the_index_projects_only_what_its_readers_filter_and_group_on() -> None:
    (index,) = [
        g
        for g in table_specs()["events"]["global_secondary_indexes"]
        if g["name"] == "by_recipient"
    ]
    assert index["projection"] == "INCLUDE"
    assert index["non_key_attributes"] == sorted(RECIPIENT_INDEX_ATTRIBUTES)


@pytest.mark.parametrize("statuses", [(), (Status.DELIVERED, Status.OPENED)])
def test_a_recipient_page_returns_whole_rows_in_two_round_trips(
    tenant: TestTenant, statuses: tuple[Status, ...]
) -> None:
    _stored(tenant)
    q = EventQuery(tenant.tenant_id, 1, _span(), statuses=statuses, recipient=ALICE)
    page = list_events(q, limit=50, signer=SIGNER)
    wanted = {s.value for s in statuses} or {"SENT", "DELIVERED", "OPENED"}
    assert [r.status for r in page.items] == [
        s for s in ("OPENED", "DELIVERED", "SENT") if s in wanted
    ]
    for row in page.items:  # what the index does not carry, read from the table
        assert row.address() == ALICE and row.subject and row.source and row.key()
    assert "engagement_reason" in next(r.detail for r in page.items if r.status == "OPENED")
    assert (page.rounds, page.requests) == (2, 2)


def test_the_recipient_history_needs_only_the_index(tenant: TestTenant) -> None:
    _stored(tenant)
    body = recipient_history(tenant.tenant_id, ALICE, _span(), 10)
    assert [m["status"] for m in body["messages"]] == ["OPENED"]
