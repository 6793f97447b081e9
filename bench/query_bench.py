"""Read figures for the API's queries, on DynamoDB Local with real ingest:

- events_query_read_amplification_max: items read / items returned while paging through the
  whole result (limit 50), worst over: no filter, one status, two statuses, recipient, tag —
  for a tenant with 1 write shard and one with 4.
- events_query_sequential_rounds_max: DynamoDB round trips one after another for one page
  (queries run side by side count as one), worst page of the same cases.
- stats_items_read_ratio_1m_vs_10k: items the same 30-day stats request reads with 1,000,000 vs
  10,000 events counted (the hourly buckets are written directly at those volumes).
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys, logs, tables
from chalicelib.core.settings import Settings
from chalicelib.core.signing import Signer
from chalicelib.core.tables import CounterModel, TenantModel
from chalicelib.events.ses import parse_envelope, parse_event
from chalicelib.events.status import Status
from chalicelib.history.event_list import EventQuery, TimeRange, list_events
from chalicelib.history.reports import stats
from chalicelib.ingest.pipeline import ingest_envelopes

from devstack.dynamodb_local import DynamoDBLocal, create_tables
from devstack.traffic import traffic

MESSAGES = int(os.environ.get("SESAMI_BENCH_QUERY_MESSAGES", "600"))


def _page_all(q: EventQuery, signer: Signer) -> tuple[int, int, float, int]:
    """(items read, items returned, DynamoDB requests per page, most sequential rounds of a
    page)."""
    read = returned = requests = pages = rounds = 0
    cursor = None
    while True:
        page = list_events(q, limit=50, signer=signer, cursor=cursor)
        read += page.items_read
        returned += len(page.items)
        requests += page.requests
        rounds = max(rounds, page.rounds)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            return read, returned, requests / pages, rounds


def _amplification(settings: Settings) -> dict[str, Any]:
    from tests.support import make_tenant

    now = datetime.now(UTC)
    signer = Signer(b"b" * 32)
    out: dict[str, float] = {}
    per_page: dict[str, float] = {}
    rounds: dict[str, int] = {}
    for shards in (1, 4):
        tenant = make_tenant(settings, write_shards=shards)
        # The tenant designates `campaign` for the tag view (core/tables.py indexed_tags).
        TenantModel(tenant.tenant_id).update(
            actions=[
                TenantModel.write_shards.set(shards),
                TenantModel.indexed_tags.set({"campaign"}),
            ]
        )
        tenant.directory.forget(tenant.account_id)
        envelopes = list(
            traffic(
                tenant.account_id,
                MESSAGES,
                start=now - timedelta(days=3),
                span=timedelta(days=2),
                seed=shards,
                until=now,
            )
        )
        ingest_envelopes(envelopes, tenants=tenant.directory, store=tenant.store)
        events = [parse_event(parse_envelope(e)) for e in envelopes]
        who = Counter(r for e in events for r in e.recipients).most_common(1)[0][0]
        campaign = events[0].mail.tags["campaign"][0]
        span = TimeRange.parse(None, None, "7d", now=now, retention_days=365)
        cases = {
            "all": EventQuery(tenant.tenant_id, shards, span),
            "status": EventQuery(tenant.tenant_id, shards, span, statuses=(Status.DELIVERED,)),
            "two_statuses": EventQuery(
                tenant.tenant_id, shards, span, statuses=(Status.OPENED, Status.CLICKED)
            ),
            "recipient": EventQuery(tenant.tenant_id, shards, span, recipient=who),
            "tag": EventQuery(
                tenant.tenant_id,
                shards,
                span,
                tag=("campaign", campaign),
                indexed_tags=frozenset({"campaign"}),
            ),
            "rare_status": EventQuery(tenant.tenant_id, shards, span, statuses=(Status.BOUNCED,)),
            "tag_not_designated": EventQuery(
                tenant.tenant_id, shards, span, tag=("campaign", campaign)
            ),
        }
        for name, q in cases.items():
            read, returned, requests, most = _page_all(q, signer)
            out[f"{name}_shards{shards}"] = round(read / max(1, returned), 3)
            per_page[f"{name}_shards{shards}"] = round(requests, 1)
            rounds[f"{name}_shards{shards}"] = most
    return {
        "events_query_read_amplification": out,
        "events_query_read_amplification_max": max(out.values()),
        # The price of merging several partitions with little over-read: more, smaller queries.
        "events_query_requests_per_page": per_page,
        "events_query_sequential_rounds": rounds,
        "events_query_sequential_rounds_max": max(rounds.values()),
    }


def _stats_ratio(settings: Settings) -> dict[str, Any]:
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    reads = {}
    for label, total in (("10k", 10_000), ("1m", 1_000_000)):
        tenant_id = f"bench-stats-{label}"
        hours = 30 * 24
        per_hour = total // hours
        with CounterModel.batch_write() as batch:
            for h in range(hours):
                ts = now - timedelta(hours=h)
                item = CounterModel(keys.counter_pk(tenant_id, 0), keys.counter_sk(ts))
                item.SENT = per_hour // 3
                item.DELIVERED = per_hour // 3
                item.OPENED = per_hour - 2 * (per_hour // 3)
                batch.save(item)
        span = TimeRange.parse(None, None, "30d", now=datetime.now(UTC), retention_days=365)
        reads[label] = stats(tenant_id, 1, span, "day")["buckets_read"]
    return {
        "stats_items_read_10k": reads["10k"],
        "stats_items_read_1m": reads["1m"],
        "stats_items_read_ratio_1m_vs_10k": round(reads["1m"] / reads["10k"], 3),
    }


def run() -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    logs.silence_metrics()
    with DynamoDBLocal() as ddb:
        settings = Settings(table_prefix="bench-q-", dynamodb_endpoint=ddb.endpoint)
        create_tables(settings)
        tables.configure(settings)
        return {**_amplification(settings), **_stats_ratio(settings)}
