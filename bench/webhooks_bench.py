"""Webhook figures, on DynamoDB Local and a receiver on loopback:

- webhook_enqueue_wcu_per_event: DynamoDB write units ingest spends per event on webhooks: the
  same realistic mix through the real ingest for a tenant with two endpoints, and for a tenant
  without webhooks at all (no notifier), the difference per event; `_without_endpoints`: the
  same for a tenant with the notifier but no endpoint (the enqueue is an SQS message, never a
  DynamoDB write).
- webhook_enqueue_sqs_messages_per_event: SQS messages queued per event (with endpoints: one per
  endpoint and message; without: the alerts' cue, at most once a minute per tenant).
- ingest_wcu_per_event_webhooks_on / _off: ingest's modelled bill with and without endpoints.
- webhook_delivery_ms_p50 / _p95: one delivery handled end to end by the delivery handler: read
  the endpoint, open its secret, sign, POST to the receiver, write the delivery record.
- webhook_delivery_wcu_per_delivery: DynamoDB write units per delivered (first-attempt) delivery.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from chalicelib.core import logs, tables
from chalicelib.core.settings import Settings
from chalicelib.ingest.pipeline import ingest_envelopes

from bench.ingest_bench import CapacityMeter
from devstack.dynamodb_local import DynamoDBLocal, create_tables
from devstack.traffic import traffic

MESSAGES = 150
DELIVERIES = 200


def run() -> dict[str, Any]:
    logs.silence_metrics()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    from chalicelib.webhooks.queue import MemoryQueue

    from tests.fakes import FakeEpochClock
    from tests.support import make_tenant
    from tests.webhooks.support import hooks_for, receiver

    with DynamoDBLocal() as ddb:
        settings = Settings(table_prefix="bench-", dynamodb_endpoint=ddb.endpoint)
        create_tables(settings)
        tables.configure(settings)
        bare, plain, hooked = make_tenant(settings), make_tenant(settings), make_tenant(settings)
        with receiver() as hook:
            hooks = hooks_for(hooked.tenant_id)
            hooks.endpoint(hook.url)
            hooks.endpoint(hook.url.replace("/hooks", "/second"))
            quiet = hooks_for(plain.tenant_id, queue=MemoryQueue(FakeEpochClock.starting_now()))
            mix_bare = list(traffic(bare.account_id, MESSAGES, seed=21))
            mix_off = list(traffic(plain.account_id, MESSAGES, seed=21))
            mix_on = list(traffic(hooked.account_id, MESSAGES, seed=21))
            with CapacityMeter() as none:
                ingest_envelopes(mix_bare, tenants=bare.directory, store=bare.store)
            with CapacityMeter() as off:
                report = ingest_envelopes(
                    mix_off,
                    tenants=plain.directory,
                    store=plain.store,
                    notify=quiet.notifier.recorded,
                )
            with CapacityMeter() as on:
                ingest_envelopes(
                    mix_on,
                    tenants=hooked.directory,
                    store=hooked.store,
                    notify=hooks.notifier.recorded,
                )
            events = report.counts().get("stored", 0)
            tasks = [t for t in hooks.h.queue.due() if t.body["k"] == "deliver"][:DELIVERIES]
            took: list[float] = []
            with CapacityMeter() as delivering:
                for task in tasks:
                    began = time.perf_counter()
                    hooks.h.worker.handle(task.body)
                    took.append((time.perf_counter() - began) * 1000)
    took.sort()
    return {
        "webhook_enqueue_wcu_per_event": round((on.billed_write - none.billed_write) / events, 3),
        "webhook_enqueue_wcu_per_event_without_endpoints": round(
            (off.billed_write - none.billed_write) / events, 3
        ),
        "webhook_enqueue_sqs_messages_per_event": round(len(hooks.h.queue.sent) / events, 3),
        "webhook_enqueue_sqs_messages_per_event_without_endpoints": round(
            len(quiet.h.queue.sent) / events, 4
        ),
        "ingest_wcu_per_event_webhooks_on": round(on.billed_write / events, 3),
        "ingest_wcu_per_event_webhooks_off": round(none.billed_write / events, 3),
        "webhook_delivery_ms_p50": round(statistics.median(took), 2),
        "webhook_delivery_ms_p95": round(took[int(0.95 * (len(took) - 1))], 2),
        "webhook_delivery_wcu_per_delivery": round(delivering.billed_write / len(tasks), 3),
        "webhook_deliveries_measured": len(tasks),
    }


if __name__ == "__main__":
    print(run())
