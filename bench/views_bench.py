"""Bounded items and read views (issue 14), on DynamoDB Local with real ingest:

- ingest_aggregate_bytes_max: the message aggregate the worst events can make
  (devstack/worst_case.py), sized as DynamoDB counts it (names + values); `_before_model` is
  the same message as the aggregate was stored before the bounds (50 links of 8 KB kept whole,
  `\\uXXXX`-escaped JSON with blanks). ingest_entry_bytes_max: the largest timeline entry any
  of the worst events makes (devstack/worst_case.py `events` + `item_events`), built the way
  ingest builds it; `_before_bound` is the 50-recipient Bounce's entry as it was stored before
  the entry was bounded (every recipient in its set, the facts of the first 10).
- links_queries_1y (1 and 3 shards): DynamoDB Query requests GET /links makes over the 1y
  preset; `_before` is the former one query per day and shard. links_rollup_wcu_per_event /
  _per_click: the write units the monthly rollups add (one more transactional update of a
  counter under 1 KB, 2 WCU, per click or correction), over the realistic mix.
- message_detail_bytes_max: the largest GET /messages/{id} response of a message with 5,000
  opens, paging through its whole timeline (default and largest page); `_before` is the one
  response holding every event, as before paging.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import logs, tables
from chalicelib.core.item_size import compact_json, item_bytes
from chalicelib.core.settings import Settings
from chalicelib.core.signing import Signer
from chalicelib.events.messages import message_item, timeline_entry
from chalicelib.history import reports, timeline
from chalicelib.history.event_list import TimeRange
from chalicelib.ingest.pipeline import ingest_envelopes
from pynamodb.connection import base as pynamodb_base

from devstack import big_message, worst_case
from devstack.dynamodb_local import DynamoDBLocal, create_tables
from devstack.traffic import traffic

OPENS = 5_000


class _Calls:
    """DynamoDB requests by operation, and the month rollup updates inside transactions."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.rollups = 0
        self._orig = pynamodb_base.Connection._make_api_call

    def __enter__(self) -> _Calls:
        calls, orig = self, self._orig

        def call(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
            calls.requests[operation] += 1
            if operation == "TransactWriteItems":
                for entry in kwargs["TransactItems"]:
                    key = entry.get("Update", {}).get("Key", {})
                    calls.rollups += str(key.get("sk", {}).get("S", "")).startswith("M#")
            return orig(conn, operation, kwargs)

        pynamodb_base.Connection._make_api_call = call  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        pynamodb_base.Connection._make_api_call = self._orig  # type: ignore[method-assign]


def _aggregate() -> dict[str, Any]:
    state = worst_case.worst_state()
    now = datetime.now(UTC)
    after = item_bytes(message_item("T#t#M#" + state.message_id, state, None, now).serialize())
    # Before: every link kept whole (8 KB), the document in escaped JSON with blanks.
    long_links = {f"https://example.com/{i:02d}/" + "%C3%A9" * 1360: 6 for i in range(50)}
    before_state = replace(state, links=dict(sorted(long_links.items())[:50]))
    item = message_item("T#t#M#" + state.message_id, before_state, None, now).serialize()
    body = json.loads(item["body"]["S"])
    item["body"] = {"S": json.dumps(body)}
    bounce = next(e for e in worst_case.events() if e.event_type.value == "Bounce")
    # Before the entry's bounds: every recipient in the set, the facts of the first 10.
    before_entry: dict[str, Any] = {
        "pk": {"S": "T#" + "t" * 32 + "#M#" + bounce.mail.message_id},
        "sk": {"S": "E#2026-01-01T00:00:05.000Z#" + bounce.key},
        "event_key": {"S": bounce.key},
        "event_type": {"S": "Bounce"},
        "status": {"S": "BOUNCED"},
        "occurred_at": {"S": "2026-01-01T00:00:05.000Z"},
        "recipients": {"SS": list(bounce.recipients)},
        "shard": {"N": "0"},
        "detail": {"S": compact_json(_detail_before(bounce))},
        "expires_at": {"N": "1800000000"},
    }
    return {
        "ingest_aggregate_bytes_max": after,
        "ingest_aggregate_bytes_max_before_model": item_bytes(item),
        **_entries(now),
        "ingest_entry_bytes_max_before_bound": item_bytes(before_entry),
    }


def _detail_before(bounce: Any) -> dict[str, Any]:
    facts = {
        b.address: {
            "status": b.status,
            "diagnostic_code": (b.diagnostic_code or "")[:200],
            "action": b.action,
        }
        for b in bounce.detail.bounced[:10]
    }
    d = bounce.detail
    return {
        "bounce_type": d.bounce_type,
        "bounce_subtype": d.bounce_subtype,
        "recipients": facts,
        "recipients_other": 40,
    }


def _entries(now: datetime) -> dict[str, Any]:
    """The largest timeline entry the worst events make (devstack/worst_case.py, `events` and
    `item_events`), built as ingest's EventStore._plan builds it: capped, folded, judged, then
    `timeline_entry` with the aggregate's destination."""
    from chalicelib.core import keys
    from chalicelib.events.engagement import signal_of
    from chalicelib.events.state import apply
    from chalicelib.ingest.caps import cap
    from chalicelib.ingest.engagement_writes import judge

    state, largest = None, (0, "")
    pk = keys.message_pk("t" * 32, worst_case.events()[0].mail.message_id)
    for event in [*worst_case.events(), *worst_case.item_events()]:
        capped = cap(event)
        signal = signal_of(capped.event)
        before, state = state, apply(state, capped.event, signal=signal)
        judged = judge(before, state, capped.event, signal)
        extra = {**judged.entry_fields, **({"capped": capped.dropped} if capped.dropped else {})}
        entry = timeline_entry(
            pk, capped.event, state.destination, shard=0, extra=extra, expires_at=now
        )
        largest = max(largest, (item_bytes(entry.serialize()), event.event_type.value))
    return {"ingest_entry_bytes_max": largest[0], "ingest_entry_bytes_max_event": largest[1]}


def _aggregate_units() -> dict[str, Any]:
    """Write units of the aggregate over the realistic mix (folded in memory, the item sized as
    DynamoDB counts it, rounded up to 1 KB, x2 in the transaction): stored as now, and as the
    document was stored before (escaped JSON with blanks, empty fields kept)."""
    from chalicelib.events.ses import parse_envelope, parse_event
    from chalicelib.events.state import apply

    states: dict[str, Any] = {}
    now, units, before, events = datetime.now(UTC), 0, 0, 0
    for raw in traffic("111122223333", 400, seed=3):
        event = parse_event(parse_envelope(raw))
        state = states[event.mail.message_id] = apply(states.get(event.mail.message_id), event)
        item = message_item("T#" + "t" * 32 + "#M#" + state.message_id, state, None, now)
        wire = item.serialize()
        units += 2 * -(-item_bytes(wire) // 1024)
        body = {
            "first_open_at": None,
            "last_open_at": None,
            "last_click_at": None,
            "links": {},
            "links_other": 0,
            **json.loads(wire["body"]["S"]),
        }
        wire["body"] = {"S": json.dumps(body)}
        before += 2 * -(-item_bytes(wire) // 1024)
        events += 1
    return {
        "aggregate_wcu_per_event": round(units / events, 3),
        "aggregate_wcu_per_event_before_model": round(before / events, 3),
    }


def _links(settings: Settings) -> dict[str, Any]:
    from tests.support import make_tenant

    now = datetime.now(UTC)
    out: dict[str, Any] = {}
    for shards in (1, 3):
        tenant = make_tenant(settings, write_shards=shards)
        envelopes = list(
            traffic(
                tenant.account_id,
                120,
                start=now - timedelta(days=364),
                span=timedelta(days=360),
                seed=14 + shards,
                until=now,
            )
        )
        with _Calls() as writes:
            report = ingest_envelopes(envelopes, tenants=tenant.directory, store=tenant.store)
        stored = report.counts().get("stored", 0)
        clicks = sum(1 for e in envelopes if e["detail"]["eventType"] == "Click")
        span = TimeRange.parse(None, None, "1y", now=now, retention_days=365)
        with _Calls() as reads:
            body = reports.top_links(tenant.tenant_id, shards, span, 10)
        suffix = "" if shards == 1 else f"_shards{shards}"
        out[f"links_queries_1y{suffix}"] = reads.requests["Query"]
        out[f"links_queries_1y{suffix}_before"] = len(span.days()) * shards
        if shards == 1:
            out["links_rollup_wcu_per_event"] = round(2 * writes.rollups / max(1, stored), 4)
            out["links_rollup_wcu_per_click"] = round(2 * writes.rollups / max(1, clicks), 3)
            out["links_1y_clicks_counted"] = body["total_clicks"]
            out["links_1y_clicks_sent"] = clicks
    return out


def _message_detail() -> dict[str, Any]:
    tenant_id = uuid.uuid4().hex
    evs = big_message.events(OPENS, datetime.now(UTC) - timedelta(days=5))
    big_message.write(tenant_id, evs)
    message_id = evs[0].mail.message_id
    signer = Signer(b"b" * 32)
    out: dict[str, Any] = {}
    for name, limit in (("", timeline.DEFAULT_LIMIT), ("_largest_page", timeline.MAX_LIMIT)):
        sizes, cursor, seen = [], None, 0
        with _Calls() as calls:
            while True:
                page = timeline.message_detail(
                    tenant_id, message_id, signer=signer, limit=limit, cursor=cursor
                )
                sizes.append(len(json.dumps(page).encode()))
                seen += len(page["events"])
                cursor = page["next"]
                if cursor is None:
                    break
        assert seen == OPENS + 2, seen
        out[f"message_detail_bytes_max{name}"] = max(sizes)
        out[f"message_detail_pages{name}"] = len(sizes)
        out[f"message_detail_requests_per_page{name}"] = round(
            sum(calls.requests.values()) / len(sizes), 2
        )
    saved = timeline.MAX_PAGE_BYTES
    timeline.MAX_PAGE_BYTES = 10**9
    try:
        whole = timeline.message_detail(tenant_id, message_id, signer=signer, limit=10**6)
    finally:
        timeline.MAX_PAGE_BYTES = saved
    out["message_detail_bytes_max_before"] = len(json.dumps(whole).encode())
    return out


def run() -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    logs.silence_metrics()
    out = {**_aggregate(), **_aggregate_units()}
    with DynamoDBLocal() as ddb:
        settings = Settings(table_prefix="bench-v-", dynamodb_endpoint=ddb.endpoint)
        create_tables(settings)
        tables.configure(settings)
        out.update(_links(settings))
        out.update(_message_detail())
    return out


if __name__ == "__main__":  # PYTHONPATH=app:. .venv/bin/python -m bench.views_bench
    print(json.dumps(run(), indent=2, sort_keys=True))
