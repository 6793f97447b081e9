"""Human and machine opens and clicks through the real ingest (DynamoDB Local): the classified
counters, per message, per recipient, per hour and per link, are exactly once under shuffled
redelivery and the same whatever order the events arrive in — a Delivery arriving after the
opens it explains included."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from chalicelib.core import keys
from chalicelib.core.tables import EventModel, LinkCounterModel
from chalicelib.events import engagement as eng
from chalicelib.events.ses import parse_envelope, parse_event
from chalicelib.history import reports
from chalicelib.history.event_list import TimeRange

from tests.conftest import load_event
from tests.ingest.test_ingest import LIFECYCLE_A, MESSAGE_A, counters, message, run, snapshot
from tests.support import TestTenant, for_account, make_tenant

MESSAGE_N = "010001a1bf892a80-3c1f6a2e-5d47-4b8e-9a10-6f2b8c4d7e91-000000"
MACHINES = [
    f"engagement/{name}"
    for name in (
        "send",
        "delivery",
        "open_gateway_prefetch",  # 0.6 s after delivery, a browser's user agent
        "click_gateway_1",  # the three links, 0.8-0.88 s after delivery
        "click_gateway_2",
        "click_gateway_3",
        "open_apple_mpp",
        "open_yahoo_proxy",
        "click_barracuda",
        "click_person_hour_later",
    )
]
LINKS = [
    "https://www.example.net/invoices/2026-11",
    "https://www.example.net/account/billing",
    "https://www.example.net/help/invoices",
]
CLASSIFIED = {
    # message N: the gateway's open, Apple's prefetch, Yahoo's proxy; four machine clicks and a
    # person's an hour later. Message A: iPhone Mail and Thunderbird, Gmail's proxy, two clicks.
    "OPENED_SCANNER": 1,
    "OPENED_APPLE_PRIVACY": 1,
    "OPENED_IMAGE_PROXY": 2,
    "OPENED_HUMAN": 2,
    "CLICKED_SCANNER": 4,
    "CLICKED_HUMAN": 3,
    "OPENED_MESSAGES": 2,
    "OPENED_MESSAGES_HUMAN": 1,
    "CLICKED_MESSAGES": 2,
    "CLICKED_MESSAGES_HUMAN": 2,
}


def link_split(t: TestTenant) -> dict[str, tuple[int, int, int]]:
    """url -> (clicks, human, scanner), summed over every day and shard (a month's partition
    holds only day items: no rollup is written)."""
    out: Counter[tuple[str, str]] = Counter()
    for shard in range(t.ref.write_shards):
        pk = keys.link_pk(t.tenant_id, datetime.fromisoformat("2026-11-02"), shard)
        for item in LinkCounterModel.query(pk):
            assert item.sk.startswith("D#")
            out[(item.url, "clicks")] += int(item.clicks or 0)
            out[(item.url, "human")] += int(item.human or 0)
            out[(item.url, "scanner")] += int(item.scanner or 0)
    urls = {url for url, _ in out}
    return {u: (out[(u, "clicks")], out[(u, "human")], out[(u, "scanner")]) for u in urls}


def classified(t: TestTenant) -> dict[str, int]:
    return {k: v for k, v in counters(t).items() if k in CLASSIFIED and v}


def test_classified_counters_are_exactly_once_under_shuffled_redelivery(settings: Any) -> None:
    once, thrice = make_tenant(settings), make_tenant(settings)
    names = [*MACHINES, *LIFECYCLE_A]
    run(once, *names)
    assert classified(once) == CLASSIFIED
    redelivered = [for_account(load_event(n), thrice.account_id) for n in names * 3]
    random.Random(11).shuffle(redelivered)
    run(thrice, *redelivered)
    ids = [MESSAGE_A, MESSAGE_N]
    assert snapshot(thrice, ids) == snapshot(once, ids)
    assert link_split(thrice) == link_split(once)
    split = link_split(once)
    assert split[LINKS[0]] == (2, 0, 2)  # the gateway's click and Barracuda's
    assert split[LINKS[1]] == (2, 1, 1)  # the gateway's, then the person's an hour later
    assert split[LINKS[2]] == (1, 0, 1)


def test_the_same_counters_whatever_the_order_delivery_last_included(settings: Any) -> None:
    first = make_tenant(settings)
    run(first, *MACHINES)
    expected = (classified(first), link_split(first), message(first, MESSAGE_N).body)
    for seed in (1, 2):
        t = make_tenant(settings)
        order = [n for n in MACHINES if not n.endswith("/delivery")]
        random.Random(seed).shuffle(order)
        run(t, *order, "engagement/delivery")  # the Delivery after every open and click
        assert (classified(t), link_split(t), message(t, MESSAGE_N).body) == expected


def test_the_aggregate_keeps_the_facts_of_its_counts_per_message_and_recipient(
    tenant: TestTenant,
) -> None:
    run(tenant, *MACHINES)
    body = message(tenant, MESSAGE_N).body
    opens = {"scanner": 1, "apple_privacy": 1, "image_proxy": 1}
    clicks = {"scanner": 4, "human": 1}
    log, delivered = eng.log_from_doc(body["engagement"], body["links"])
    judged = eng.assess(log, delivered or 0)
    assert (judged.by_class(eng.OPEN), judged.by_class(eng.CLICK)) == (opens, clicks)
    assert (
        delivered == 4_500 and body["engagement"]["d"] == 4_500
    )  # the delivery, 4.5 s after the send
    assert len(body["engagement"]["f"]) == 8  # every open and click, as a fact
    span = TimeRange(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
    nina = reports.recipient_history(tenant.tenant_id, "nina@example.com", span, 10)
    assert (nina["messages"][0]["opens_by"], nina["messages"][0]["clicks_by"]) == (opens, clicks)
    detail = reports.message_detail(tenant.tenant_id, MESSAGE_N)
    mine = detail["recipients"]["nina@example.com"]
    assert (mine["opens_by"], mine["clicks_by"]) == (opens, clicks)
    billing = next(link for link in detail["clicks"]["links"] if link["url"] == LINKS[1])
    assert (billing["count"], billing["human"], billing["scanner"]) == (2, 1, 1)


def test_rows_keep_the_class_at_arrival_the_message_page_the_final_one(tenant: TestTenant) -> None:
    """The gateway's open comes before its Delivery: judged against the send (5.1 s), it looks
    like a person; the Delivery (4.5 s after the send) makes it 0.6 s after delivery."""
    run(tenant, "engagement/send", "engagement/open_gateway_prefetch", "engagement/delivery")
    row = next(
        r
        for r in EventModel.query(keys.events_pk(tenant.tenant_id, 0))
        if r.message_id == MESSAGE_N and r.status == "OPENED"
    )
    assert row.engagement == "human" and "engagement" not in (row.detail or {})  # once
    detail = reports.message_detail(tenant.tenant_id, MESSAGE_N)
    opened = next(e for e in detail["events"] if e["status"] == "OPENED")
    assert opened["detail"]["engagement"] == "scanner"
    assert opened["detail"]["engagement_reason"] == "timing:near_delivery"
    assert opened["detail"]["signal"] == "human"
    assert detail["opens"]["by_class"] == {"scanner": 1}
    assert counters(tenant).get("OPENED_SCANNER") == 1 and "OPENED_HUMAN" not in {
        k for k, v in counters(tenant).items() if v
    }


def test_stats_links_and_recipient_report_people_beside_the_raw_counts(
    tenant: TestTenant,
) -> None:
    run(tenant, *MACHINES, *LIFECYCLE_A)
    span = TimeRange(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 10, tzinfo=UTC))
    stats = reports.stats(tenant.tenant_id, 1, span, "day")
    engagement = stats["engagement"]
    assert engagement["opens"] == {
        "total": 6,
        "human": 2,
        "apple_privacy": 1,
        "image_proxy": 2,
        "scanner": 1,
        "unknown": 0,
    }
    assert engagement["clicks"]["total"] == 7 and engagement["clicks"]["human"] == 3
    # Two messages delivered, both opened by something, one by a person.
    assert stats["rates"]["open"] == {"value": 1.0, "human": 0.5}
    assert stats["rates"]["click"] == {"value": 1.0, "human": 1.0}
    assert sum(p["OPENED_HUMAN"] for p in stats["series"]) == 2
    links = reports.top_links(tenant.tenant_id, 1, span, 10)
    assert (links["total_clicks"], links["human_clicks"], links["scanner_clicks"]) == (7, 3, 4)
    billing = next(x for x in links["links"] if x["url"] == LINKS[1])
    assert (billing["clicks"], billing["human"], billing["scanner"]) == (2, 1, 1)
    nina = reports.recipient_history(tenant.tenant_id, "nina@example.com", span, 10)
    assert nina["totals"]["opens_by"] == {"scanner": 1, "apple_privacy": 1, "image_proxy": 1}
    assert nina["totals"]["clicks_by"] == {"scanner": 4, "human": 1}


def test_events_recorded_before_classification_still_read(tenant: TestTenant) -> None:
    """An aggregate and entries written without facts or signals (before this feature)."""
    run(tenant, "send", "delivery", "open")
    m = message(tenant, MESSAGE_A)
    body = {k: v for k, v in m.body.items() if k != "engagement"}
    assert body != m.body
    m.update(actions=[type(m).body.set(body)])
    event = parse_event(parse_envelope(load_event("open_second")))
    assert event.mail.message_id == MESSAGE_A
    run(tenant, "open_second")
    detail = reports.message_detail(tenant.tenant_id, MESSAGE_A)
    assert detail["opens"]["count"] == 2
    assert sum(u["count"] for u in detail["opens"]["user_agents"]) == 2
