"""The send-time suppression check with and without the Momento cache, on DynamoDB Local and the
real Momento SDK against the local Momento server; and the sender check's SES calls.

- suppression_check_dynamodb_reads_per_1000_recipients: DynamoDB requests of one check of 1,000
  addresses (50 of them suppressed), counted at botocore's level: without the cache (one BatchGet
  per 100 addresses); with it cold (the version, then the list); with Momento warm and a fresh
  instance (the version only); on a warm instance (the version only).
- suppression_check_items_read_per_1000_recipients: the items those requests read (each address
  without the cache; the version's counters with it).
- suppression_check_ms_per_1000_recipients: the median wall time of a check, same cases (local
  loopback: DynamoDB Local is slower per call than DynamoDB, the local Momento faster than
  Momento's service; compare the counts first).
- suppression_check_momento_calls_per_1000_recipients: Momento RPCs of one check, as the local
  server counts them (one DictionaryGet per address bucket present).
- identity_list_calls_per_1000_sends: ListEmailIdentities calls the sender check makes for 1,000
  sends of one tenant spread over 10 simulated minutes (one per minute: the cache's TTL).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.core import keys, tables
from chalicelib.core.settings import Settings
from chalicelib.core.tables import SuppressionModel, TenantModel
from chalicelib.identities.service import IdentityService
from chalicelib.sending.momento_cache import momento_dictionaries
from chalicelib.sending.store import SendingStore
from chalicelib.sending.suppression_cache import CachedSuppressionCheck
from chalicelib.tenant_aws.ses import IdentitySummary

from devstack.dynamodb_local import DynamoDBLocal, create_tables
from devstack.momento_local.server import MomentoLocalServer

RECIPIENTS = 1_000
SUPPRESSED = 50
RUNS = 5


def _requests(run: Callable[[], object], settings: Settings) -> tuple[int, int]:
    """(DynamoDB requests, items they asked for) while `run` runs."""
    from tests.aws_calls import recording

    with recording() as aws:
        tables.configure(settings)
        run()
    tables.configure(settings)
    calls = [c for c in aws.calls if c.service == "dynamodb"]
    items = sum(
        len(spec.get("Keys", []))
        for c in calls
        for spec in c.params.get("RequestItems", {}).values()
    )
    return len(calls), items


def _ms(run: Callable[[], object]) -> float:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        run()
        times.append((time.perf_counter() - began) * 1000)
    return round(statistics.median(times), 1)


def _suppression(settings: Settings, momento: MomentoLocalServer) -> dict[str, Any]:
    tenant = uuid.uuid4().hex
    addresses = [f"r{i}@example.org" for i in range(RECIPIENTS)]
    now = keys.iso_ms(datetime.now(UTC))
    with SuppressionModel.batch_write() as batch:
        for address in addresses[:SUPPRESSED]:
            batch.save(
                SuppressionModel(
                    keys.tenant_pk(tenant),
                    address,
                    reason="BOUNCE",
                    reasons={"BOUNCE"},
                    created_at=now,
                )
            )
    store = SendingStore(settings)

    def cache() -> Any:
        return momento_dictionaries(None, momento.endpoint, "sesami-bench", timedelta(seconds=2))

    def plain() -> dict[str, Any]:
        return store.suppressed(tenant, addresses)

    assert len(plain()) == SUPPRESSED
    cold_check = CachedSuppressionCheck(store, cache())
    cold = _requests(lambda: cold_check.suppressed(tenant, addresses), settings)
    fresh_instance = CachedSuppressionCheck(store, cache())
    momento.reset_calls()
    from_momento = _requests(lambda: fresh_instance.suppressed(tenant, addresses), settings)
    momento_calls = sum(momento.calls.values())
    warm = _requests(lambda: cold_check.suppressed(tenant, addresses), settings)
    without = _requests(plain, settings)

    def fresh() -> object:
        return CachedSuppressionCheck(store, cache()).suppressed(tenant, addresses)

    assert len(cold_check.suppressed(tenant, addresses)) == SUPPRESSED
    return {
        "suppression_check_dynamodb_reads_per_1000_recipients": {
            "without_cache": without[0],
            "with_cache_cold": cold[0],
            "with_cache_momento_warm_new_instance": from_momento[0],
            "with_cache_warm_instance": warm[0],
        },
        "suppression_check_items_read_per_1000_recipients": {
            "without_cache": without[1],
            "with_cache_cold": cold[1],
            "with_cache_momento_warm_new_instance": from_momento[1],
            "with_cache_warm_instance": warm[1],
        },
        "suppression_check_ms_per_1000_recipients": {
            "without_cache": _ms(plain),
            "with_cache_momento_warm_new_instance": _ms(fresh),
            "with_cache_warm_instance": _ms(lambda: cold_check.suppressed(tenant, addresses)),
        },
        "suppression_check_momento_calls_per_1000_recipients": momento_calls,
    }


class _Identities:
    def __init__(self) -> None:
        self.calls = 0

    def page(self, size: int, token: str | None) -> tuple[list[IdentitySummary], str | None]:
        self.calls += 1
        return [IdentitySummary("example.com", "DOMAIN", "SUCCESS", True)], None


def _identity_calls() -> int:
    ses, now = _Identities(), [0.0]
    service = IdentityService(lambda t: ses, clock=lambda: now[0])  # type: ignore[arg-type, return-value]
    tenant = TenantModel("bench", external_id="x", created_at=datetime.now(UTC))
    for _ in range(RECIPIENTS):
        service.check_sender(tenant, "news@example.com")
        now[0] += 0.6  # 1,000 sends over 10 minutes
    return ses.calls


def run() -> dict[str, Any]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    with DynamoDBLocal() as ddb, MomentoLocalServer() as momento:
        settings = Settings(table_prefix="bench-s-", dynamodb_endpoint=ddb.endpoint)
        create_tables(settings)
        tables.configure(settings)
        out = _suppression(settings, momento)
    out["identity_list_calls_per_1000_sends"] = _identity_calls()
    return out
