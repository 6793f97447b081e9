"""The replay tool: files and the ingest DLQ (moto's SQS), through the real ingest."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from ops.replay import drain_dlq, envelopes_from_files, replay
from tests.api_fixtures import client
from tests.conftest import EVENTS, load_event
from tests.support import TestTenant, for_account


def test_replays_files_and_json_lines_reporting_each_outcome(
    tenant: TestTenant, tmp_path: Path
) -> None:
    (tmp_path / "one.json").write_text(json.dumps(load_event("send")))
    lines = [json.dumps(load_event(n)) for n in ("delivery", "open", "other_detail_type_advisor")]
    (tmp_path / "more.jsonl").write_text("\n".join([*lines, "not json"]) + "\n")
    out = io.StringIO()
    items = envelopes_from_files([tmp_path / "one.json", tmp_path / "more.jsonl"])
    counts = replay(
        items, tenants=tenant.directory, store=tenant.store, as_account=tenant.account_id, out=out
    )
    assert counts == {"stored": 3, "ignored": 1, "quarantined": 1}
    assert "more.jsonl:4" in out.getvalue()
    again = replay(
        envelopes_from_files([tmp_path / "one.json"]),
        tenants=tenant.directory,
        store=tenant.store,
        as_account=tenant.account_id,
        out=io.StringIO(),
    )
    assert again == {"duplicate": 1}


def test_without_rewriting_the_account_an_unknown_account_stores_nothing(
    tenant: TestTenant,
) -> None:
    counts = replay(
        envelopes_from_files([EVENTS / "unknown_account.json"]),
        tenants=tenant.directory,
        store=tenant.store,
        out=io.StringIO(),
    )
    assert counts == {"unknown_account": 1}


def test_drains_the_dlq_idempotently(tenant: TestTenant, moto_endpoint: str) -> None:
    sqs = client(moto_endpoint, "sqs")
    url = sqs.create_queue(QueueName="sesami-ingest-dlq")["QueueUrl"]
    names = ["send", "delivery", "open", "send"]  # the last one is a duplicate
    for name in names:
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(for_account(load_event(name), tenant.account_id)),
            MessageAttributes={"ERROR_CODE": {"DataType": "String", "StringValue": "Throttled"}},
        )
    out = io.StringIO()
    counts = drain_dlq(sqs, url, tenants=tenant.directory, store=tenant.store, out=out)
    assert counts == {"stored": 3, "duplicate": 1}
    assert "Throttled" in out.getvalue()
    remaining: Any = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]["ApproximateNumberOfMessages"]
    assert remaining == "0"


def test_drains_the_ingest_functions_failure_records(
    tenant: TestTenant, moto_endpoint: str
) -> None:
    # What Lambda's on-failure destination queues after the retries of an async invocation.
    sqs = client(moto_endpoint, "sqs")
    url = sqs.create_queue(QueueName="sesami-ingest-failures")["QueueUrl"]
    for name in ("send", "bounce_permanent_multi"):
        record = {
            "version": "1.0",
            "timestamp": "2026-11-28T10:00:00.000Z",
            "requestContext": {
                "requestId": "c6af9ac6-7b61-11e6-9a41-93e812345678",
                "functionArn": "arn:aws:lambda:us-east-1:444455556666:function:sesami-ingest",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": for_account(load_event(name), tenant.account_id),
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {"errorType": "TransientStorageError", "errorMessage": "throttled"},
        }
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    out = io.StringIO()
    counts = drain_dlq(sqs, url, tenants=tenant.directory, store=tenant.store, out=out)
    assert counts == {"stored": 2}
    assert "RetriesExhausted TransientStorageError" in out.getvalue()
