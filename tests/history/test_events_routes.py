"""Reading history through the API: events (filters, pagination, cursors bound to the tenant,
CSV), one message, one recipient, links, stats — against DynamoDB Local with real ingest."""

from __future__ import annotations

import csv
import io
import secrets
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from chalicelib.core.signing import Signer
from chalicelib.core.tables import AccountModel, TenantModel
from chalicelib.events.ses import parse_envelope, parse_event
from chalicelib.events.status import Status
from chalicelib.history.event_list import EventQuery, TimeRange, list_events
from chalicelib.ingest.directory import TenantDirectory
from chalicelib.ingest.pipeline import ingest_envelopes
from chalicelib.ingest.store import EventStore

from devstack.traffic import traffic
from tests.api_fixtures import call, sign_in
from tests.conftest import load_event
from tests.support import BOUND_LONG_AGO, for_account


def onboard(
    api: Any, moto: str, pool: dict[str, str], settings: Any, *, shards: int = 1, messages: int = 60
) -> dict[str, Any]:
    """A signed-in tenant whose account has sent `messages` messages over the last two days."""
    token = sign_in(moto, pool)
    tenant_id = call(api, "GET", "/account", token).json_body["tenant_id"]
    account = "".join(secrets.choice("0123456789") for _ in range(12))
    AccountModel(account, tenant_id=tenant_id, bound_at=BOUND_LONG_AGO).save()
    TenantModel(tenant_id).update(actions=[TenantModel.write_shards.set(shards)])
    envelopes = list(
        traffic(
            account,
            messages,
            start=datetime.now(UTC) - timedelta(days=2),
            span=timedelta(days=1),
            seed=messages + shards,
            until=datetime.now(UTC) - timedelta(minutes=1),
        )
    )
    ingest_envelopes(envelopes, tenants=TenantDirectory(0), store=EventStore(settings))
    events = [parse_event(parse_envelope(e)) for e in envelopes]
    return {"token": token, "tenant_id": tenant_id, "events": events, "envelopes": envelopes}


def all_pages(api: Any, token: str, query: str, limit: int = 7) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        url = f"/events?{query}&limit={limit}" + (f"&next={cursor}" if cursor else "")
        body = call(api, "GET", url, token).json_body
        assert "events" in body, body
        items += body["events"]
        cursor = body["next"]
        if cursor is None:
            return items
    raise AssertionError("pagination did not end")


def expected_rows(events: list[Any], keep: Any = lambda e, r: True) -> int:
    return sum(1 for e in events for r in (e.recipients or (None,)) if keep(e, r))


@pytest.mark.parametrize("shards", [1, 3])
def test_every_event_row_once_newest_first_across_pages(
    api: Any, moto: str, pool: dict[str, str], settings: Any, shards: int
) -> None:
    t = onboard(api, moto, pool, settings, shards=shards)
    items = all_pages(api, t["token"], "range=7d")
    assert len(items) == expected_rows(t["events"])
    assert len({i["id"] for i in items}) == len(items)
    times = [i["at"] for i in items]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("shards", [1, 3])
def test_status_filter_one_or_several(
    api: Any, moto: str, pool: dict[str, str], settings: Any, shards: int
) -> None:
    t = onboard(api, moto, pool, settings, shards=shards)
    opened = all_pages(api, t["token"], "range=7d&status=OPENED")
    assert {i["status"] for i in opened} == {"OPENED"}
    assert len(opened) == expected_rows(t["events"], lambda e, r: e.status is Status.OPENED)
    several = all_pages(api, t["token"], "range=7d&status=BOUNCED,CLICKED")
    wanted = {Status.BOUNCED, Status.CLICKED}
    assert len(several) == expected_rows(t["events"], lambda e, r: e.status in wanted)
    times = [i["at"] for i in several]
    assert times == sorted(times, reverse=True)


def test_recipient_and_tag_filters(
    api: Any, moto: str, pool: dict[str, str], settings: Any
) -> None:
    t = onboard(api, moto, pool, settings)
    who = Counter(r for e in t["events"] for r in e.recipients).most_common(1)[0][0]
    mine = all_pages(api, t["token"], f"range=7d&recipient={who}")
    assert {i["recipient"] for i in mine} == {who}
    assert len(mine) == expected_rows(t["events"], lambda e, r: r == who)
    campaign = t["events"][0].mail.tags["campaign"][0]
    tagged = all_pages(api, t["token"], f"range=7d&tag=campaign:{campaign}")
    assert tagged and all(i["tags"]["campaign"] == [campaign] for i in tagged)
    assert len(tagged) == expected_rows(
        t["events"], lambda e, r: e.mail.tags.get("campaign") == (campaign,)
    )


def test_single_source_queries_read_only_what_they_return(settings: Any) -> None:
    from tests.support import make_tenant

    tenant = make_tenant(settings)
    envelopes = list(
        traffic(
            tenant.account_id,
            40,
            start=datetime.now(UTC) - timedelta(hours=30),
            span=timedelta(hours=24),
            seed=12,  # a draw with bounces (the rare statuses below)
        )
    )
    ingest_envelopes(envelopes, tenants=tenant.directory, store=tenant.store)
    now = datetime.now(UTC)
    span = TimeRange.parse(None, None, "7d", now=now, retention_days=365)
    signer = Signer(b"k" * 32)
    page = list_events(EventQuery(tenant.tenant_id, 1, span), limit=25, signer=signer)
    assert len(page.items) == 25 and page.items_read == 25 and page.requests == 1
    # A status the sparse index holds is one partition too. (The common ones, DELIVERED, ...,
    # have no index entry: they read the time view filtered, see the next test.)
    events = [parse_event(parse_envelope(e)) for e in envelopes]
    (status, rare), *_ = Counter(
        e.status for e in events if e.status in (Status.BOUNCED, Status.DELIVERY_DELAYED)
    ).most_common(1)
    q = EventQuery(tenant.tenant_id, 1, span, statuses=(status,))
    page = list_events(q, limit=rare, signer=signer)
    assert len(page.items) == rare and page.items_read == rare


def test_a_common_status_is_the_time_view_filtered_in_two_rounds_at_most(settings: Any) -> None:
    from tests.support import make_tenant

    tenant = make_tenant(settings, write_shards=3)
    envelopes = list(
        traffic(
            tenant.account_id,
            60,
            start=datetime.now(UTC) - timedelta(hours=30),
            span=timedelta(hours=24),
            seed=4,
        )
    )
    ingest_envelopes(envelopes, tenants=tenant.directory, store=tenant.store)
    delivered = {
        e.key
        for e in (parse_event(parse_envelope(raw)) for raw in envelopes)
        if e.status is Status.DELIVERED
    }
    span = TimeRange.parse(None, None, "7d", now=datetime.now(UTC), retention_days=365)
    q = EventQuery(tenant.tenant_id, 3, span, statuses=(Status.DELIVERED,))
    seen: list[str] = []
    cursor, signer = None, Signer(b"k" * 32)
    for _ in range(100):
        page = list_events(q, limit=10, signer=signer, cursor=cursor)
        assert page.rounds <= 2 and page.requests <= 6  # 3 shards, side by side, twice at most
        seen += [i.key() for i in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) and set(seen) == delivered


def test_cursor_of_another_tenant_or_tampered_is_a_400(
    api: Any, moto: str, pool: dict[str, str], settings: Any
) -> None:
    a = onboard(api, moto, pool, settings, messages=20)
    b = onboard(api, moto, pool, settings, messages=20)
    cursor = call(api, "GET", "/events?range=7d&limit=5", a["token"]).json_body["next"]
    assert cursor
    stolen = call(api, "GET", f"/events?range=7d&limit=5&next={cursor}", b["token"])
    assert stolen.status_code == 400 and stolen.json_body["error"]["details"] == {"field": "next"}
    body, mac = cursor.split(".")
    tampered = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + mac
    bad = call(api, "GET", f"/events?range=7d&limit=5&next={tampered}", a["token"])
    assert bad.status_code == 400
    other_filter = call(api, "GET", f"/events?range=7d&status=SENT&next={cursor}", a["token"])
    assert other_filter.status_code == 400


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=TELEPORTED", "status"),
        ("range=2w", "range"),
        ("from=yesterday", "from"),
        ("from=2026-11-10T00:00:00Z&to=2026-11-01T00:00:00Z", "from"),
        ("limit=500", "limit"),
        ("limit=0", "limit"),
        ("tag=campaign", "tag"),
        ("recipient=nobody", "recipient"),
        ("range=7d&from=2026-11-01T00:00:00Z", "range"),
        ("format=xml", "format"),
        ("engagement=robot", "engagement"),
    ],
)
def test_bad_filters_are_400s_naming_the_field(
    api: Any, moto: str, pool: dict[str, str], query: str, field: str
) -> None:
    token = sign_in(moto, pool)
    response = call(api, "GET", f"/events?{query}", token)
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["details"] == {"field": field}


@pytest.mark.parametrize("path", ["/events", "/stats", "/links", "/recipients/a@example.com"])
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=2000-01-01T00:00:00Z", "to"),  # wholly before the retention window (was a 500)
        ("to=0001-01-01T00:00:00%2B01:00", "to"),  # before year 1 in UTC (was a 500)
        ("from=2999-01-01T00:00:00Z&to=3000-01-01T00:00:00Z", "from"),
    ],
)
def test_a_range_outside_what_is_kept_is_a_400_on_every_history_route(
    api: Any, moto: str, pool: dict[str, str], path: str, query: str, field: str
) -> None:
    token = sign_in(moto, pool)
    response = call(api, "GET", f"{path}?{query}", token)
    assert response.status_code == 400, response.json_body
    assert response.json_body["error"]["details"] == {"field": field}


def test_a_range_ending_in_the_future_is_cut_at_now() -> None:
    now = datetime(2026, 11, 5, 12, tzinfo=UTC)
    span = TimeRange.parse(
        "2026-11-01T00:00:00Z", "9999-12-31T00:00:00Z", None, now=now, retention_days=365
    )
    assert (span.start, span.end) == (datetime(2026, 11, 1, tzinfo=UTC), now)
    assert len(span.days()) == 5  # not one per day until the year 9999


def test_csv_export_has_every_row(api: Any, moto: str, pool: dict[str, str], settings: Any) -> None:
    t = onboard(api, moto, pool, settings, messages=30)
    response = api.http.get(
        "/events?range=7d&format=csv", headers={"Authorization": f"Bearer {t['token']}"}
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert len(rows) == expected_rows(t["events"])
    assert {"at", "status", "recipient", "message_id"} <= set(rows[0])


def test_filter_by_who_opened_or_clicked_and_the_class_in_rows_and_csv(
    api: Any, moto: str, pool: dict[str, str], settings: Any
) -> None:
    t = onboard(api, moto, pool, settings, messages=60)
    engaged = all_pages(api, t["token"], "range=7d&status=OPENED,CLICKED", limit=50)
    assert engaged and all(e["engagement"] for e in engaged)
    by_class = Counter(e["engagement"] for e in engaged)
    assert {"human", "apple_privacy", "scanner"} <= set(by_class)  # the demo mix has them all
    machines = all_pages(api, t["token"], "range=7d&engagement=scanner,apple_privacy", limit=20)
    expected = [e["id"] for e in engaged if e["engagement"] in ("scanner", "apple_privacy")]
    assert [e["id"] for e in machines] == expected
    others = all_pages(api, t["token"], "range=7d&status=DELIVERED", limit=50)
    assert others and all(e["engagement"] is None for e in others)
    response = api.http.get(
        "/events?range=7d&format=csv&engagement=human",
        headers={"Authorization": f"Bearer {t['token']}"},
    )
    rows = list(csv.DictReader(io.StringIO(response.body.decode())))
    assert len(rows) == by_class["human"] and {r["engagement"] for r in rows} == {"human"}


def test_the_csv_export_is_in_the_document() -> None:
    """Found by schemathesis: GET /events?format=csv answered text/csv, the document promised
    only JSON."""
    from chalicelib.core import openapi

    import app  # noqa: F401 - its route modules declare the document

    ok = openapi.document()["paths"]["/events"]["get"]["responses"]["200"]["content"]
    assert set(ok) == {"application/json", "text/csv"}


def test_message_detail_and_isolation(
    api: Any, moto: str, pool: dict[str, str], settings: Any
) -> None:
    t = onboard(api, moto, pool, settings, messages=20)
    other = sign_in(moto, pool)
    by_message = Counter(e.mail.message_id for e in t["events"])
    message_id, n = by_message.most_common(1)[0]
    detail = call(api, "GET", f"/messages/{message_id}", t["token"]).json_body
    assert len(detail["events"]) == n
    assert [e["at"] for e in detail["events"]] == sorted(e["at"] for e in detail["events"])
    opens = [
        e for e in t["events"] if e.mail.message_id == message_id and e.status is Status.OPENED
    ]
    assert detail["opens"]["count"] == len(opens)
    assert sum(u["count"] for u in detail["opens"]["user_agents"]) == len(opens)
    assert call(api, "GET", f"/messages/{message_id}", other).status_code == 404
    assert call(api, "GET", "/messages/nope", t["token"]).status_code == 404
    # The timeline a page at a time through the route: one event per page, each once.
    url, seen, cursor, cursors = f"/messages/{message_id}?limit=1", [], None, []
    for _ in range(n + 1):
        page = call(api, "GET", url + (f"&next={cursor}" if cursor else ""), t["token"]).json_body
        seen += [e["id"] for e in page["events"]]
        assert page["event_count"] == n and page["opens"]["count"] == len(opens)
        if (cursor := page["next"]) is None:
            break
        cursors.append(cursor)
    assert len(seen) == len(set(seen)) == n
    assert cursors and call(api, "GET", f"{url}&next={cursors[0]}x", t["token"]).status_code == 400
    assert call(api, "GET", f"/messages/{message_id}?limit=501", t["token"]).status_code == 400


def test_recipient_history(api: Any, moto: str, pool: dict[str, str], settings: Any) -> None:
    t = onboard(api, moto, pool, settings, messages=40)
    who = Counter(r for e in t["events"] for r in e.recipients).most_common(1)[0][0]
    body = call(api, "GET", f"/recipients/{who}", t["token"]).json_body
    messages = {e.mail.message_id for e in t["events"] if who in e.recipients}
    assert {m["message_id"] for m in body["messages"]} == messages
    opens = sum(1 for e in t["events"] if who in e.recipients and e.status is Status.OPENED)
    assert body["totals"]["opens"] == opens
    other = sign_in(moto, pool)
    assert call(api, "GET", f"/recipients/{who}", other).json_body["messages"] == []


def test_opens_of_a_message_to_several_addresses_are_not_attributed_to_one(
    api: Any, moto: str, pool: dict[str, str], settings: Any
) -> None:
    """SES does not say which recipient of a message sent to several addresses opened it: the
    recipient page shows those opens apart, as the message's (`unattributed`), never as this
    recipient's nor as opens recorded before classification."""
    token = sign_in(moto, pool)
    tenant_id = call(api, "GET", "/account", token).json_body["tenant_id"]
    account = "".join(secrets.choice("0123456789") for _ in range(12))
    AccountModel(account, tenant_id=tenant_id, bound_at=BOUND_LONG_AGO).save()
    send, delivery = load_event("send_multi"), load_event("delivery_multi")
    mail = send["detail"]["mail"]
    opened = load_event("open")
    opened["detail"]["mail"] = mail
    opened["time"] = "2026-11-04T15:02:11Z"
    opened["detail"]["open"]["timestamp"] = "2026-11-04T15:02:11.120Z"
    alone = [load_event(n) for n in ("send", "delivery", "open")]  # another message, to bob only
    for raw in alone:
        raw["detail"]["mail"]["destination"] = ["bob@example.com"]
    alone[1]["detail"]["delivery"]["recipients"] = ["bob@example.com"]
    raws = [for_account(r, account) for r in (send, delivery, opened, *alone)]
    ingest_envelopes(raws, tenants=TenantDirectory(0), store=EventStore(settings))
    url = "/recipients/bob@example.com?from=2026-11-01T00:00:00Z&to=2026-11-10T00:00:00Z"
    body = call(api, "GET", url, token).json_body
    by_id = {m["message_id"]: m for m in body["messages"]}
    several = by_id[mail["messageId"]]
    # Not this recipient's, nor unclassified: the message's, whoever of its three opened it.
    assert (several["opens"], several["opens_by"]) == (0, {})
    assert several["unattributed"] == {"opens": 1, "clicks": 0}
    (mine,) = [m for m in body["messages"] if m["message_id"] != mail["messageId"]]
    assert (mine["opens"], mine["opens_by"]) == (1, {"human": 1})
    assert mine["unattributed"] == {"opens": 0, "clicks": 0}
    assert body["totals"]["opens"] == 1 and body["totals"]["opens_by"] == {"human": 1}
    assert body["totals"]["unattributed"] == {"opens": 1, "clicks": 0}


def test_links_and_stats(api: Any, moto: str, pool: dict[str, str], settings: Any) -> None:
    t = onboard(api, moto, pool, settings, messages=80)
    links = call(api, "GET", "/links?range=7d&top=3", t["token"]).json_body
    clicks = Counter(e.detail.link for e in t["events"] if e.status is Status.CLICKED)
    assert links["total_clicks"] == sum(clicks.values())
    # Each link's count is its true count, and they are the top three (ties in any order).
    assert all(x["clicks"] == clicks[x["url"]] for x in links["links"])
    assert [x["clicks"] for x in links["links"]] == [n for _, n in clicks.most_common(3)]
    stats = call(api, "GET", "/stats?range=7d", t["token"]).json_body
    rows = Counter(e.status.value for e in t["events"] for _ in (e.recipients or (None,)))
    for status, n in rows.items():
        assert stats["totals"][status] == n
    assert sum(b["DELIVERED"] for b in stats["series"]) == rows["DELIVERED"]
    assert stats["interval"] == "day" and len(stats["series"]) == 8
    hard = sum(1 for e in t["events"] if e.status is Status.BOUNCED and e.detail.permanent)
    assert stats["rates"]["bounce"]["value"] == round(hard / rows["SENT"], 5)
    assert stats["rates"]["bounce"]["state"] in ("ok", "warning", "at_risk")
