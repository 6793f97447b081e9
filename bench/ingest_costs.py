"""What one event costs, beyond the mean bill (bench/ingest_bench.py):

- ingest_wcu_worst_event: the modelled write bill of the adversarial event, a Send with 50
  recipients and 50 tags of 256 + 256 characters (what SES allows at most), through the real
  ingest on DynamoDB Local; ingest_item_bytes_max: the largest item any write of it carried.
- storage_bytes_per_event: every item left in the tables after the realistic mix, sized the way
  DynamoDB bills storage (names + values + 100 bytes per item), plus a copy per index entry
  (ALL projection: the whole item; KEYS_ONLY: the keys; INCLUDE: the keys and the attributes it
  names), over the events stored; storage_bytes_per_event_by_part: the same by table and index.
- ingest_cpu_us_per_event_all_in: process CPU per event of the whole ingest path (handler,
  parsing, folding, item building, botocore serialisation and signing, response parsing) with
  DynamoDB's HTTP replaced by an in-process responder that keeps what is written, so reads see
  earlier writes (its JSON decoding of the requests is counted too: a few µs per request).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.endpoint import Endpoint
from chalicelib.core.tables import table_specs

from bench.ingest_bench import CapacityMeter, _value_size

STORAGE_ITEM_OVERHEAD = 100  # bytes DynamoDB adds to every item (and index entry) it stores


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name) + _value_size(value) for name, value in item.items())


def adversarial_envelope(account: str, at: datetime) -> dict[str, Any]:
    """A Send with everything SES allows at most: 50 recipients, 50 tags of 256 + 256 chars."""
    recipients = [f"r{i:02d}-{'x' * 40}@example.com" for i in range(50)]
    tags = {f"{i:02d}{'n' * 254}": [f"{i:02d}{'v' * 254}"] for i in range(49)}
    tags["ses:configuration-set"] = ["sesami-events"]
    mail = {
        "timestamp": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "source": "sender@example.com",
        "sourceArn": f"arn:aws:ses:us-east-1:{account}:identity/example.com",
        "sendingAccountId": account,
        "messageId": f"0100{int(at.timestamp() * 1000):012x}-{uuid.uuid4()}-000000",
        "destination": recipients,
        "headersTruncated": False,
        "tags": tags,
        "commonHeaders": {"from": ["sender@example.com"], "to": recipients, "subject": "s" * 998},
    }
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Email Sent",
        "source": "aws.ses",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1",
        "resources": [],
        "detail": {"eventType": "Send", "mail": mail, "send": {}},
    }


class ItemSizeMeter(CapacityMeter):
    """CapacityMeter that also keeps the largest item a write carried."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __enter__(self) -> ItemSizeMeter:
        super().__enter__()
        from pynamodb.connection import base

        metered = base.Connection._make_api_call
        meter = self

        def call(conn: Any, operation: str, kwargs: dict[str, Any]) -> Any:
            for item in _written_items(operation, kwargs):
                meter.largest = max(meter.largest, item_bytes(item))
            return metered(conn, operation, kwargs)

        base.Connection._make_api_call = call  # type: ignore[method-assign,assignment]
        return self


def _written_items(operation: str, kwargs: dict[str, Any]) -> Iterator[dict[str, Any]]:
    if operation == "PutItem":
        yield kwargs["Item"]
    elif operation == "BatchWriteItem":
        for reqs in kwargs["RequestItems"].values():
            for r in reqs:
                if "PutRequest" in r:
                    yield r["PutRequest"]["Item"]
    elif operation == "TransactWriteItems":
        for entry in kwargs["TransactItems"]:
            if "Put" in entry:
                yield entry["Put"]["Item"]


def storage_bytes(client: Any, prefix: str) -> int:
    """Bytes stored across every table of `prefix`, index copies included."""
    return sum(storage_bytes_by_part(client, prefix).values())


def storage_bytes_by_part(
    client: Any, prefix: str, skip_tenant: str | None = None
) -> dict[str, int]:
    """The same, by table (its items) and by index (`table.index`: its entries); `skip_tenant`:
    leave out the items of that tenant (its id is in every key of its own)."""
    parts: dict[str, int] = {}
    for name, spec in table_specs().items():
        table = prefix + name
        table_keys = [spec["hash_key"], *([spec["range_key"]] if spec["range_key"] else [])]
        for page in client.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                if skip_tenant and skip_tenant in str(item[spec["hash_key"]].get("S", "")):
                    continue
                size = item_bytes(item) + STORAGE_ITEM_OVERHEAD
                parts[name] = parts.get(name, 0) + size
                for gsi in spec["global_secondary_indexes"]:
                    if gsi["hash_key"] not in item or (
                        gsi["range_key"] and gsi["range_key"] not in item
                    ):
                        continue
                    if gsi["projection"] == "ALL":
                        copy = size
                    else:
                        names = {*table_keys, gsi["hash_key"], gsi["range_key"]} - {None}
                        names |= set(gsi["non_key_attributes"])  # INCLUDE's
                        copy = STORAGE_ITEM_OVERHEAD + item_bytes(
                            {k: v for k, v in item.items() if k in names}
                        )
                    part = f"{name}.{gsi['name']}"
                    parts[part] = parts.get(part, 0) + copy
    return parts


# ------------------------------------------------------------------------ stubbed DynamoDB


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


class StubbedDynamoDB:
    """DynamoDB's HTTP replaced in process: requests are signed and serialised as usual, then
    answered from a dict of the items written so far (puts, and the aggregates' PartiQL INSERTs
    and UPDATEs, so that later events read their message's aggregate; other updates answer
    empty)."""

    def __init__(self, seed: dict[str, list[dict[str, Any]]]) -> None:
        self._keys = {
            name: [s["hash_key"], *([s["range_key"]] if s["range_key"] else [])]
            for name, s in table_specs().items()
        }
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests = 0
        for table, items in seed.items():
            for item in items:
                self._put(table, item)

    def _key(self, table: str, item: dict[str, Any]) -> tuple[str, str]:
        logical = table.rsplit("-", 1)[-1]
        names = self._keys.get(logical) or list(item)[:2]
        return table, json.dumps([item.get(n) for n in names], sort_keys=True)

    def _put(self, table: str, item: dict[str, Any]) -> None:
        self.items[self._key(table, item)] = item

    def answer(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        if operation == "BatchGetItem":
            responses = {
                table: [
                    self.items[self._key(table, k)]
                    for k in spec["Keys"]
                    if self._key(table, k) in self.items
                ]
                for table, spec in body["RequestItems"].items()
            }
            return {"Responses": responses, "UnprocessedKeys": {}}
        if operation == "GetItem":
            found = self.items.get(self._key(body["TableName"], body["Key"]))
            return {"Item": found} if found else {}
        if operation == "PutItem":
            self._put(body["TableName"], body["Item"])
        elif operation == "BatchWriteItem":
            for table, reqs in body["RequestItems"].items():
                for r in reqs:
                    if "PutRequest" in r:
                        self._put(table, r["PutRequest"]["Item"])
            return {"UnprocessedItems": {}}
        elif operation == "TransactWriteItems":
            for entry in body["TransactItems"]:
                if "Put" in entry:
                    self._put(entry["Put"]["TableName"], entry["Put"]["Item"])
        elif operation == "BatchExecuteStatement":
            for statement in body["Statements"]:
                self._execute(statement["Statement"], statement.get("Parameters") or [])
            return {"Responses": [{} for _ in body["Statements"]]}
        elif operation in ("Query", "Scan"):
            return {"Items": [], "Count": 0, "ScannedCount": 0}
        return {}

    def _execute(self, statement: str, parameters: list[dict[str, Any]]) -> None:
        """The PartiQL writes ingest makes (store.py `_aggregate_statement`), conditions taken as
        met: `INSERT INTO "t" VALUE {'a': ?, ...}`, and `UPDATE "t" SET "a"=? ... REMOVE "b" ...
        WHERE "pk"=? AND "sk"=? ...` (the item's keys are the first two WHERE parameters)."""
        table = statement.split('"', 2)[1]
        if statement.startswith("INSERT"):
            names = re.findall(r"'([^']+)': \?", statement)
            self._put(table, dict(zip(names, parameters, strict=False)))
            return
        head, where = statement.split(" WHERE ", 1)
        sets = re.findall(r'SET "([^"]+)"=\?', head)
        gone = re.findall(r'REMOVE "([^"]+)"', head)
        keys = re.findall(r'"([^"]+)"=\?', where)[:2]
        key = dict(zip(keys, parameters[len(sets) : len(sets) + 2], strict=True))
        item = dict(self.items.get(self._key(table, key), key))
        item.update(zip(sets, parameters, strict=False))
        for name in gone:
            item.pop(name, None)
        self._put(table, item)

    @contextmanager
    def installed(self) -> Iterator[StubbedDynamoDB]:
        original = Endpoint._send
        stub = self

        def send(endpoint: Any, request: Any) -> AWSResponse:
            target = request.headers.get("X-Amz-Target", b"")
            target = target.decode() if isinstance(target, bytes) else target
            if not target.startswith("DynamoDB_"):
                return original(endpoint, request)
            body = json.loads(request.body or b"{}")
            data = json.dumps(stub.answer(target.split(".", 1)[1], body)).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "stub"}
            return AWSResponse(request.url, 200, headers, _Raw(data))

        Endpoint._send = send  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            Endpoint._send = original  # type: ignore[method-assign]


def cpu_all_in(
    seed: dict[str, list[dict[str, Any]]], account: str, messages: int, handler: Any
) -> tuple[float, float]:
    """(µs of process CPU per event, DynamoDB requests per event) of `handler(envelopes)` over
    the realistic mix, DynamoDB stubbed."""
    from devstack.traffic import traffic

    envelopes = list(
        traffic(account, messages, start=datetime.now(UTC) - timedelta(days=2), seed=11)
    )
    with StubbedDynamoDB(seed).installed() as stub:
        start = time.process_time()
        handler(envelopes)
        elapsed = time.process_time() - start
    return round(elapsed / len(envelopes) * 1e6, 1), round(stub.requests / len(envelopes), 3)
