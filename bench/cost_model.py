"""`cost_per_million_emails_usd`: SESami's side of the bill per million emails, from the measured
figures of this run (bench/results.json) and on-demand us-east-1 list prices as assumptions.

An "email" is one recipient of one message, as SES bills ($0.10 per 1,000): the mix's events per
email come from the same traffic the ingest bench stores (devstack.traffic, 400 messages, seed 3).
What is not measured here is named as an assumption: Lambda's billed duration per event (no AWS
account here) and DynamoDB's read units (DynamoDB Local reports BatchGetItem's units per item
read, DynamoDB rounds each item up to 4 KB: ~1 unit per strongly consistent item, 2 items per
event)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Assumed prices (us-east-1, on demand; check the current price list).
WRITE_UNIT = 0.625e-6  # $ per write request unit
READ_UNIT = 0.125e-6  # $ per read request unit
STORAGE_GB_MONTH = 0.25  # $ per GB-month of table storage
SQS_REQUEST = 0.40e-6  # $ per SQS request (EventBridge's send; ingest's receive and delete)
LAMBDA_REQUEST = 0.20e-6  # $ per invocation
LAMBDA_GB_SECOND = 0.0000166667  # $ per GB-second
# Assumptions (not measurable without AWS):
LAMBDA_MS_PER_EVENT = 5.0  # billed duration per event in batches of 100 (CPU ~1.8 ms + I/O)
# count_events (the counters, from the messages table's stream): DynamoDB Streams' reads are free
# for Lambda triggers; its invocations (a batch of up to 1,000 records) and its writes are in
# the figures above (its write units are part of ingest_wcu_per_event).
LAMBDA_GB = 0.5  # the ingest function's memory (infra/functions.py: 512 MB)
QUEUE_BATCH = 100
RETENTION_DAYS_COUNTED = 30  # storage counted for a month of retention
READ_UNITS_PER_EVENT_ON_DYNAMODB = 2.0  # the dedup entry and the aggregate, strongly consistent
SES_PER_MILLION = 100.0  # what SES charges for a million emails


def events_per_email() -> float:
    from devstack.traffic import traffic

    envelopes = list(traffic("111122223333", 400, seed=3))
    emails = sum(
        len(e["detail"]["mail"]["destination"])
        for e in envelopes
        if e["detail"].get("eventType") == "Send"
    )
    return len(envelopes) / max(1, emails)


def run(results: Mapping[str, Any]) -> dict[str, Any]:
    per_email = events_per_email()
    events = per_email * 1_000_000
    wcu = float(results["ingest_wcu_per_event"])
    storage = float(results["storage_bytes_per_event"])
    lines = {
        "dynamodb_writes": events * wcu * WRITE_UNIT,
        "dynamodb_reads": events * READ_UNITS_PER_EVENT_ON_DYNAMODB * READ_UNIT,
        "storage_30_days": events * storage / 1e9 * STORAGE_GB_MONTH * RETENTION_DAYS_COUNTED / 30,
        "sqs": events * (1 + 2 / QUEUE_BATCH) * SQS_REQUEST,
        "lambda_requests": events / QUEUE_BATCH * LAMBDA_REQUEST,
        "lambda_duration": events * LAMBDA_MS_PER_EVENT / 1000 * LAMBDA_GB * LAMBDA_GB_SECOND,
    }
    total = sum(lines.values())
    # The write line again for the ingest figures by events per batch (a smaller tenant gets
    # smaller batches: bench/ingest_bench.py _by_batch_size), the other lines unchanged.
    by_batch = {
        size: round(
            total - lines["dynamodb_writes"] + events * float(f["wcu_per_event"]) * WRITE_UNIT, 2
        )
        for size, f in (results.get("ingest_by_events_per_batch") or {}).items()
    }
    return {
        "cost_per_million_emails_usd_by_events_per_batch": by_batch,
        "ingest_events_per_email": round(per_email, 3),
        "cost_per_million_emails_usd": round(total, 2),
        "cost_per_million_emails_by_line_usd": {k: round(v, 2) for k, v in lines.items()},
        "cost_share_of_ses": round(total / SES_PER_MILLION, 3),
    }
